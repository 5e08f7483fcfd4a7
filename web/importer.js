// The Import view (#/import): a pasted Compose file becomes units PREFIX-SERVICE, converted by the
// daemon (POST /import with {compose: {text, prefix, env}}). Preview is a dry run: the units it
// would write as TOML, the notes, and the errors with their line and column in the pasted text.
// Import writes all of them or none, and starts them (dependencies first) if asked.

import { h, replace, announce } from "./dom.js";
import { api, can, NAME_RE } from "./api.js";
import { errorDetails, warningsNote } from "./diag.js";
import { refusedView } from "./create.js";

export function renderImport(main, ctx) {
  ctx.setTitle("Import");
  if (!can("operator")) return refusedView(main, "Import a Compose file");
  const area = (id, rows, describedBy) => h("textarea", { id, rows, wrap: "off", spellcheck: "false", autocapitalize: "off", class: "mono", "aria-describedby": describedBy });
  const compose = area("import-compose", "16", "import-compose-help");
  const env = area("import-env", "3", "import-env-help");
  const prefix = h("input", { id: "import-prefix", type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "off", "aria-describedby": "import-prefix-help import-prefix-error" });
  const prefixErr = h("p", { id: "import-prefix-error", class: "form-error", role: "alert" });
  const start = h("input", { type: "checkbox", id: "import-start" });
  const previewBtn = h("button", { type: "button", class: "btn", id: "import-preview" }, "Preview");
  const importBtn = h("button", { type: "button", class: "btn btn-primary", id: "import-go", disabled: true }, "Import");
  const why = h("span", { id: "import-why", class: "muted small" }, "Preview first.");
  const out = h("div", { id: "import-out", "aria-live": "polite" });

  let previewed = null; // the body of the last dry run that converted, to import exactly that
  const body = (dryRun) => ({
    compose: { text: compose.value, prefix: prefix.value.trim() || null, env: env.value },
    dry_run: dryRun,
    start: !dryRun && start.checked,
  });
  const sameInput = () => previewed && JSON.stringify(body(true).compose) === JSON.stringify(previewed.compose);

  function paint() {
    const p = prefix.value.trim();
    // The prefix is the first part of every name: the daemon's name rule applies to it.
    prefixErr.textContent = p && !NAME_RE.test(p) ? `\`${p}\` cannot start a unit name: use 1-64 characters of [a-z0-9][a-z0-9_.-]*` : "";
    const ok = sameInput();
    importBtn.disabled = busy || !ok;
    why.textContent = busy ? "Working…" : ok ? "" : "Preview first: Import writes what the preview showed.";
  }
  let busy = false;
  for (const el of [compose, env, prefix]) el.addEventListener("input", paint);

  function unitsList(units, { written }) {
    return h(
      "ul",
      { class: "import-units" },
      ...units.map((u) =>
        h("li", { class: "import-unit", "data-unit": u.name },
          h("h3", {}, written && NAME_RE.test(u.name) ? h("a", { href: `#/units/${encodeURIComponent(u.name)}` }, u.name) : u.name),
          u.source ? h("p", { class: "muted small" }, `from ${u.source}`) : null,
          u.started ? h("p", { class: u.started === "done" ? "job-ok" : "bad", "data-started": u.started }, u.started === "done" ? "✓ started" : `not started: ${u.started}`) : null,
          h("pre", { class: "code-view", tabindex: "0" }, u.text),
          warningsNote(u.warnings, written ? "Written" : "Valid")),
      ),
    );
  }

  function notes(list) {
    if (!Array.isArray(list) || !list.length) return null;
    return h("div", { class: "note import-notes" }, h("p", {}, "Dropped or left for you to do:"), h("ul", {}, ...list.map((n) => h("li", {}, h("code", {}, n)))));
  }

  async function send(dryRun) {
    if (!compose.value.trim()) {
      replace(out, h("p", { class: "form-error", role: "alert" }, "Paste a Compose file first."));
      compose.focus();
      return;
    }
    const b = body(dryRun);
    busy = true;
    paint();
    replace(out, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), dryRun ? "Converting…" : b.start ? "Importing and starting…" : "Importing…"));
    try {
      const r = await api("POST", "/import", b, { signal: ctx.signal });
      const n = r.units.length;
      if (dryRun) {
        previewed = b;
        replace(out, h("h2", { id: "import-result-h" }, `${n} unit${n === 1 ? "" : "s"} would be written`), notes(r.notes), unitsList(r.units, { written: false }));
        announce(`Preview: ${n} unit${n === 1 ? "" : "s"}`);
      } else {
        previewed = null;
        replace(out, h("h2", { id: "import-result-h" }, `Imported ${n} unit${n === 1 ? "" : "s"}`), notes(r.notes), unitsList(r.units, { written: true }));
        announce(`Imported ${r.units.map((u) => u.name).join(", ")}`);
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      previewed = null;
      // Errors of the conversion are located in the pasted file; those of a unit, in its file.
      const d = e.detail || {};
      const text = Array.isArray(d.diagnostics) && d.diagnostics.every((g) => g.file === "compose.yaml") ? compose.value : undefined;
      replace(out, h("div", { class: "card-err import-error", role: "alert" }, h("h2", { class: "h3" }, dryRun ? "It does not convert" : "Nothing was imported"), ...errorDetails(e, text)));
    } finally {
      busy = false;
      paint();
    }
  }
  previewBtn.addEventListener("click", () => send(true));
  importBtn.addEventListener("click", () => {
    if (sameInput()) send(false);
  });

  const field = (id, label, control, help, extra) => h("div", { class: "field" }, h("label", { for: id }, label), control, h("p", { id: `${id}-help`, class: "help" }, help), extra || null);
  replace(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/units" }, "Units"), h("span", { "aria-hidden": "true" }, " / "), h("span", { "aria-current": "page" }, "Import")),
    h("div", { class: "page-head" }, h("h1", {}, "Import a Compose file")),
    h("div", { class: "card" },
      field("import-compose", "Compose file", compose, "Paste a compose.yaml. Each service becomes a unit named PREFIX-SERVICE. The daemon reads no file of the host for it: put variables in the .env field, not in env_file."),
      field("import-prefix", "Prefix", prefix, "The first part of every unit's name; empty: the file's name: key.", prefixErr),
      field("import-env", ".env (optional)", env, "KEY=VALUE lines for the file's ${VARIABLES}, as in a .env file."),
      h("div", { class: "apply-row" },
        h("label", { class: "check", for: "import-start" }, start, " Start the units once all are written"),
        h("div", { class: "row" }, previewBtn, importBtn, why))),
    out,
  );
  paint();
  return null;
}

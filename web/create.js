// The New unit view (#/new-unit): a name, then the unit's keys in the Config tab's form or its
// whole text in the editor (switching keeps the content: the editor's text is the one truth, the
// form writes into it), checked by the daemon while typed, then POST /units with the text and,
// if asked, a start. Operators and admins only: the daemon decides, the page hides what it refuses.

import { h, replace, announce, newId } from "./dom.js";
import { api, can, live, NAME_RE, unitPath, session } from "./api.js";
import { createEditor } from "./editor.js";
import { writeUnit } from "./toml.js";
import { unitForm } from "./unitform.js";
import { createChecker, errorDetails, warningsNote } from "./diag.js";
import { notices } from "./unit.js";

// The daemon's name rule, in its words (UnitName::RULE).
export const NAME_RULE = "1-64 characters of [a-z0-9][a-z0-9_.-]*";

/** Why `name` cannot be a new unit's name, or null. */
export function nameProblem(name) {
  if (!name) return "Give the unit a name.";
  if (!NAME_RE.test(name)) return `\`${name}\` is not a valid unit name: use ${NAME_RULE}`;
  if (live.units.has(name)) return `A unit named ${name} exists already: choose another name, or edit it on its page.`;
  return null;
}

/** The page for a role that may not create units. */
export function refusedView(main, what) {
  replace(
    main,
    h("h1", { tabindex: "-1" }, what),
    h("p", {}, `You are logged in with the ${session.role} role, which can look but not change anything. This needs an operator or admin token.`),
    h("p", {}, h("a", { href: "#/units" }, "All units")),
  );
  return null;
}

export function renderNewUnit(main, ctx) {
  ctx.setTitle("New unit");
  if (!can("operator")) return refusedView(main, "New unit");
  const nameInput = h("input", { id: "new-name", type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "off", "aria-describedby": "new-name-help new-name-error", required: true });
  const nameErr = h("p", { id: "new-name-error", class: "form-error", role: "alert" });
  const start = h("input", { type: "checkbox", id: "new-start", checked: true });
  const createBtn = h("button", { type: "button", class: "btn btn-primary", id: "new-create" }, "Create");
  const createWhy = h("span", { id: "new-create-why", class: "muted small" });
  const out = h("div", { id: "new-out", "aria-live": "polite" });

  let mode = "form";
  const ed = createEditor({
    id: "new-text",
    label: "Unit file of the new unit",
    describedBy: "diag-summary",
    text: "",
    onInput: () => check.schedule(),
  });
  const check = createChecker({
    ed,
    signal: ctx.signal,
    name: () => (NAME_RE.test(nameInput.value) ? nameInput.value : null),
    path: () => `${nameInput.value}.toml`,
    noName: "Give the unit a valid name to check its file.",
    onState: () => paint(),
    reveal: () => setMode("toml"),
  });
  const uf = unitForm({ mayEdit: true, signal: ctx.signal, labelledBy: "new-form-h" });

  /** The form's values written into the editor's text; false (the reason shown) if they cannot be. */
  function formToText(required = false) {
    const v = uf.values({ required });
    if (!v) return false;
    try {
      const t = writeUnit(ed.text, v);
      if (t !== ed.text) ed.setText(t);
    } catch (e) {
      uf.error(`The text cannot be changed by the form: ${e.message}`);
      return false;
    }
    return true;
  }

  let formTimer = null;
  uf.form.addEventListener("input", () => {
    clearTimeout(formTimer);
    check.say("Checking…");
    formTimer = setTimeout(() => {
      if (formToText()) check.run();
    }, 600);
  });
  uf.form.addEventListener("submit", (ev) => ev.preventDefault());

  const formTab = h("button", { type: "button", class: "btn btn-small", id: "new-mode-form", "aria-pressed": "true", "aria-controls": "new-form-panel" }, "Form");
  const tomlTab = h("button", { type: "button", class: "btn btn-small", id: "new-mode-toml", "aria-pressed": "false", "aria-controls": "new-toml-panel" }, "TOML");
  const formPanel = h("div", { id: "new-form-panel", class: "card" }, h("h2", { id: "new-form-h" }, "Container"), h("p", { class: "muted small" }, "The keys of [container] the Config tab edits. Other keys ([service], [health], …) are written in TOML."), uf.form);
  const tomlPanel = h("div", { id: "new-toml-panel", class: "card editor-card", hidden: true }, h("h2", {}, "Unit file"), h("p", { class: "muted small" }, "The whole file, as in ", h("code", {}, "/etc/containerctl/units/NAME.toml"), " (see ", h("code", {}, "man containerctl.unit"), ")."), ed.el);

  function setMode(m) {
    if (m === mode) return;
    clearTimeout(formTimer);
    if (m === "toml") {
      if (!formToText()) return;
    } else uf.fill(ed.text);
    mode = m;
    formTab.setAttribute("aria-pressed", String(m === "form"));
    tomlTab.setAttribute("aria-pressed", String(m === "toml"));
    formPanel.hidden = m !== "form";
    tomlPanel.hidden = m !== "toml";
    announce(m === "form" ? "Form" : "TOML editor");
    check.run();
  }
  formTab.addEventListener("click", () => setMode("form"));
  tomlTab.addEventListener("click", () => setMode("toml"));

  function paint() {
    const problem = nameProblem(nameInput.value);
    nameErr.textContent = nameInput.value || nameInput.dataset.touched ? problem || "" : "";
    nameInput.setAttribute("aria-invalid", problem && nameInput.value ? "true" : "false");
    const last = check.last;
    let why = "";
    if (problem) why = "Give the unit a free, valid name first.";
    else if (busy) why = "Creating…";
    else if (last && (last.r.diagnostics || []).length) why = "Fix the errors first.";
    else if (last && (last.r.violations || []).length) why = "The policy refuses this definition.";
    createBtn.disabled = Boolean(why);
    createWhy.textContent = why;
  }

  let busy = false;
  nameInput.addEventListener("input", () => {
    nameInput.dataset.touched = "1";
    paint();
    check.schedule();
  });

  createBtn.addEventListener("click", async () => {
    const name = nameInput.value;
    if (nameProblem(name)) return paint();
    clearTimeout(formTimer);
    if (mode === "form" && !formToText(true)) return;
    const text = ed.text;
    busy = true;
    paint();
    replace(out, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), `Creating ${name}…`));
    let created;
    try {
      created = await api("POST", "/units", { name, text });
    } catch (e) {
      busy = false;
      paint();
      if (e.name === "AbortError") return;
      check.showInvalid(e, text);
      replace(out, h("div", { class: "card-err", role: "alert" }, h("h2", { class: "h3" }, `${name} was not created`), ...errorDetails(e, text)));
      return;
    }
    const note = [h("p", { class: "job-ok" }, h("span", { "aria-hidden": "true" }, "✓ "), `Created ${name}${created.revision ? ` as revision ${created.revision}` : ""}.`), warningsNote(created.warnings, "Created")];
    if (start.checked) {
      replace(out, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), `Starting ${name}…`));
      try {
        const r = await api("POST", unitPath(name, "/start"));
        note.push(h("p", { class: "job-ok" }, h("span", { "aria-hidden": "true" }, "✓ "), `Started ${name}: ${r.state ? r.state.active_state : "done"}.`));
      } catch (e) {
        if (e.name === "AbortError") return;
        note.push(h("div", { class: "job-err card-err", role: "alert" }, h("h2", { class: "h3" }, `Created, but starting ${name} failed`), ...errorDetails(e)));
      }
    }
    notices.set(name, note);
    announce(`Created ${name}`);
    location.hash = `#/units/${encodeURIComponent(name)}`;
  });

  const nameId = "new-name";
  replace(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/units" }, "Units"), h("span", { "aria-hidden": "true" }, " / "), h("span", { "aria-current": "page" }, "New unit")),
    h("div", { class: "page-head" }, h("h1", {}, "New unit")),
    h("div", { class: "card" },
      h("div", { class: "field" },
        h("label", { for: nameId }, "Name"),
        nameInput,
        h("p", { id: "new-name-help", class: "help" }, `The unit is containerctl@NAME.service, its file /etc/containerctl/units/NAME.toml. ${NAME_RULE}, starting with a letter or digit.`),
        nameErr),
      h("div", { class: "row mode-switch", role: "group", "aria-label": "Write the unit with" }, formTab, tomlTab)),
    formPanel,
    tomlPanel,
    h("div", { class: "card" },
      h("h2", { id: newId("new-check") }, "Check"),
      h("div", { class: "check-row" }, check.summary),
      check.list,
      check.violations,
      h("div", { class: "apply-row" },
        h("label", { class: "check", for: "new-start" }, start, " Start it now"),
        h("div", { class: "row" }, createBtn, createWhy)),
      out),
  );
  paint();
  check.run();
  return () => {
    clearTimeout(formTimer);
    check.stop();
  };
}

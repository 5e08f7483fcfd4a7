// The device map and the audit trail.

import { h, replace, clear, diffView, lineDiff, timeEl, tableRoles } from "./dom.js";
import { api, ApiError, NetworkError, can, NAME_RE } from "./api.js";

/** A section that could not load: the reason and a button to try again. */
export function failure(box, e, retry) {
  if (e.name === "AbortError") return;
  replace(
    box,
    h("div", { class: "card-err", role: "alert" },
      h("p", {}, e instanceof NetworkError ? "containerctld cannot be reached." : e.message),
      h("button", { type: "button", class: "btn btn-small", onclick: retry }, "Try again")),
  );
}

/** Units by NAME as links to their pages; "none" for an empty list. */
export function unitLinks(units) {
  if (!units || !units.length) return h("span", { class: "muted" }, "none");
  const out = [];
  units.forEach((u, i) => {
    if (i) out.push(", ");
    out.push(NAME_RE.test(u) ? h("a", { href: `#/units/${encodeURIComponent(u)}` }, u) : u);
  });
  return out;
}

// ---------- devices ----------

export function renderDevices(main, ctx) {
  ctx.setTitle("Devices");
  const summary = h("p", { class: "summary" });
  const body = h("div", {}, h("p", { class: "loading" }, "Loading devices…"));
  const refresh = h("button", { type: "button", class: "btn btn-small" }, "Refresh");
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Devices"), summary),
    h("p", { class: "muted" }, "Stable device names under /dev/serial, /dev/v4l, /dev/input and /dev/snd, and every device a unit declares."),
    h("div", { class: "toolbar" }, refresh),
    body,
  );

  const load = () =>
    api("GET", "/devices", undefined, { signal: ctx.signal })
      .then((list) => {
        list.sort((a, b) => Number(a.present) - Number(b.present) || a.path.localeCompare(b.path));
        const missing = list.filter((d) => !d.present).length;
        replace(summary, `${list.length} device${list.length === 1 ? "" : "s"}`, missing ? h("span", { class: "n-failed" }, `, ${missing} missing`) : null);
        if (!list.length) {
          replace(body, h("p", { class: "empty" }, "No devices found, and no unit declares one."));
          return;
        }
        const tbody = h("tbody", {});
        for (const d of list) {
          tbody.append(
            h("tr", { "data-device": d.path, class: d.present ? "" : "row-bad" },
              h("td", { "data-label": "Device" }, h("code", { class: "wrap" }, d.path)),
              h("td", { "data-label": "Target" }, d.target && d.target !== d.path ? h("code", {}, d.target) : h("span", { class: "muted" }, "—")),
              h("td", { "data-label": "Status" }, d.present ? h("span", { class: "badge ok" }, "present") : h("span", { class: "badge bad" }, "missing")),
              h("td", { "data-label": "Used by" }, unitLinks(d.units))),
          );
        }
        replace(
          body,
          h("div", { class: "table-wrap" },
            tableRoles(h("table", { class: "list devices" },
              h("caption", { class: "visually-hidden" }, "Devices, missing ones first"),
              h("thead", {}, h("tr", {}, ...["Device", "Target", "Status", "Used by"].map((c) => h("th", { scope: "col" }, c)))),
              tbody))),
        );
      })
      .catch((e) => failure(body, e, load));
  refresh.addEventListener("click", load);
  load();
  return null;
}

// ---------- audit ----------

export function renderAudit(main, ctx) {
  ctx.setTitle("Audit");
  if (!can("admin")) {
    replace(main, h("h1", {}, "Audit trail"), h("p", {}, "Only admins can see who did what. Your role is not admin."));
    return null;
  }
  const unit = h("input", { id: "audit-unit", type: "search", autocomplete: "off", spellcheck: "false", placeholder: "all units" });
  const limit = h("select", { id: "audit-limit" }, ...[50, 200, 1000].map((n) => h("option", { value: n, selected: n === 200 }, String(n))));
  const err = h("p", { class: "form-error", role: "alert" });
  const body = h("div", {}, h("p", { class: "loading" }, "Loading the audit trail…"));
  const form = h(
    "form",
    { class: "toolbar" },
    h("label", { for: "audit-unit" }, "Unit"),
    unit,
    h("label", { for: "audit-limit" }, "Entries"),
    limit,
    h("button", { type: "submit", class: "btn btn-small" }, "Show"),
    err,
  );
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Audit trail")), h("p", { class: "muted" }, "Every change, who made it and whether it was allowed, newest first."), form, body);

  const load = () => {
    err.textContent = "";
    const q = new URLSearchParams({ limit: limit.value });
    const u = unit.value.trim();
    if (u) {
      if (!NAME_RE.test(u)) {
        err.textContent = "Not a unit name.";
        return Promise.resolve();
      }
      q.set("unit", u);
    }
    replace(body, h("p", { class: "loading" }, "Loading…"));
    return api("GET", `/audit?${q}`, undefined, { signal: ctx.signal })
      .then((list) => {
        if (!list.length) {
          replace(body, h("p", { class: "empty" }, "No entries."));
          return;
        }
        const tbody = h("tbody", {});
        for (const a of list) {
          // "ok", or "ok: what was made" (token create, cluster token create); anything else is
          // a refusal or a failed job.
          const ok = /^ok(:|$)/.test(a.result || "");
          const note = ok ? (a.result || "").replace(/^ok:?\s*/, "") : "";
          let details = h("span", { class: "muted" }, "—");
          if (a.before != null || a.after != null) {
            const d = lineDiff(a.before || "", a.after || "");
            details = h("details", {}, h("summary", {}, "Changes"), d === null ? h("div", {}, h("h4", {}, "Before"), h("pre", { class: "code-view" }, a.before || ""), h("h4", {}, "After"), h("pre", { class: "code-view" }, a.after || "")) : diffView(d, { label: `Changes of audit entry ${a.id}` }));
          }
          tbody.append(
            h("tr", { class: ok ? "" : "row-bad" },
              h("td", { "data-label": "When" }, timeEl(a.at_ms)),
              h("td", { "data-label": "Who" }, a.actor || "—", a.role ? h("span", { class: `role role-${a.role}` }, a.role) : null),
              h("td", { "data-label": "Action" }, h("code", {}, a.action || "")),
              h("td", { "data-label": "Unit" }, a.unit ? unitLinks([a.unit]) : h("span", { class: "muted" }, "—")),
              h("td", { "data-label": "Result" }, ok ? [h("span", { class: "badge ok" }, "ok"), note ? h("span", { class: "muted" }, ` ${note}`) : null] : h("span", { class: "badge bad" }, a.result || "refused")),
              h("td", { "data-label": "Details" }, details)),
          );
        }
        replace(
          body,
          h("div", { class: "table-wrap" },
            tableRoles(h("table", { class: "list audit" },
              h("caption", { class: "visually-hidden" }, "Audit entries, newest first"),
              h("thead", {}, h("tr", {}, ...["When", "Who", "Action", "Unit", "Result", "Details"].map((c) => h("th", { scope: "col" }, c)))),
              tbody))),
        );
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 403) replace(body, h("p", {}, "Only admins can see the audit trail."));
        else failure(body, e, load);
      });
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  load();
  return () => clear(body);
}

// The units overview: one row per unit, updated in place from the live stream.

import { h, replace, sparkline, fmtDuration, fmtBytes, fmtPercent } from "./dom.js";
import { api, live, applyUnits, onUnits, can } from "./api.js";

// What `containerctl status` says when the file on disk is not what systemd loaded.
export const CHANGED_ON_DISK = "changed on disk: run `systemctl daemon-reload`";

/** The visible state of a unit: a badge with the words (colour is never the only signal). */
export function stateBadge(u) {
  const state = u.active_state || "unknown";
  const badge = h("span", { class: `badge state state-${state}`, "data-state": state, "data-sub-state": u.sub_state || "" });
  badge.append(h("span", { class: "dot", "aria-hidden": "true" }), state);
  if (u.sub_state && u.sub_state !== state) badge.append(h("span", { class: "sub" }, ` (${u.sub_state})`));
  return badge;
}

const LAST_UPDATE = {
  running: "running",
  updated: "updated",
  unchanged: "unchanged",
  rolled_back: "rolled back",
  rollback_failed: "rollback failed",
  failed: "failed",
  interrupted: "interrupted",
};
const LAST_UPDATE_BAD = new Set(["rolled_back", "rollback_failed", "failed", "interrupted"]);
// The badge's words for the last update's outcome.
const LAST_UPDATE_BADGE = {
  running: "updating",
  updated: "updated",
  unchanged: "up to date",
  rolled_back: "update rolled back",
  rollback_failed: "rollback failed",
  failed: "update failed",
  interrupted: "update interrupted",
};

/** How the last update went, in words: "1.0.1 → 1.0.3 rolled back: REASON (by WHO)". */
export function lastUpdateText(last) {
  const what = LAST_UPDATE[last.outcome] || last.outcome;
  const moved = last.from_version && last.to_version ? `${last.from_version} → ${last.to_version} ` : "";
  return `${moved}${what}${last.reason ? `: ${last.reason}` : ""}${last.actor ? ` (by ${last.actor})` : ""}`;
}

/**
 * A unit's update state (`Unit.update`) as badges: "update available: VERSION" and the last
 * update's outcome; null when there is nothing to say. `long`: the outcome in full words, for
 * the unit's page (the list keeps it short, the words in the title).
 */
export function updateBadges(u, { long = false } = {}) {
  const up = u.update;
  if (!up) return null;
  const out = [];
  if (up.available) {
    out.push(h("span", { class: "badge tag tag-info", "data-update": "available", title: `${up.available} is the newest version the unit's [update] policy allows` }, `update available: ${up.available}`));
  }
  if (up.last && up.last.outcome) {
    const bad = LAST_UPDATE_BAD.has(up.last.outcome);
    const text = lastUpdateText(up.last);
    out.push(
      h("span", { class: `badge tag ${bad ? "tag-bad" : "tag-muted"}`, "data-last-update": up.last.outcome, title: text }, LAST_UPDATE_BADGE[up.last.outcome] || `update ${up.last.outcome}`),
      long ? h("span", { class: "desc last-update-text" }, text) : null,
    );
  }
  if (up.check_error && long) out.push(h("span", { class: "desc warn-text" }, `check failed: ${up.check_error}`));
  return out.length ? h("span", { class: "tags update-tags" }, ...out) : null;
}

export function healthBadge(health) {
  if (!health) return h("span", { class: "muted", title: "No health check, or not running" }, "—");
  return h("span", { class: `badge health health-${health}` }, health);
}

export function sinceMs(u) {
  return u.since_us ? Math.floor(u.since_us / 1000) : 0;
}

/** "3h 12m" while running; "—" otherwise (with the time of the last change as a title). */
export function uptimeText(u, now = Date.now()) {
  const since = sinceMs(u);
  if (!since) return "—";
  if (u.active_state === "active" || u.active_state === "reloading") return fmtDuration(now - since);
  return "—";
}

export function charts(name, u, { big = false } = {}) {
  const samples = live.samples.get(name) || [];
  const now = Date.now();
  // The window grows from 10 seconds to five minutes as samples come in, so a fresh page shows a line.
  const windowMs = Math.min(live.windowMs, Math.max(10000, samples.length ? now - samples[0].t : 0));
  const span = windowMs >= 120000 ? `${Math.round(windowMs / 60000)} minutes` : `${Math.round(windowMs / 1000)} seconds`;
  const cpu = samples.map((p) => ({ t: p.t, v: p.cpu }));
  const mem = samples.map((p) => ({ t: p.t, v: p.mem }));
  const cpuMax = Math.max(...cpu.map((p) => p.v || 0), 0);
  const memMax = Math.max(...mem.map((p) => p.v || 0), 0);
  const cls = big ? "spark spark-big" : "spark";
  return {
    cpu: sparkline(cpu, {
      now,
      windowMs,
      label: `CPU of ${name} over the last ${span}: now ${fmtPercent(u.cpu_percent)}, peak ${fmtPercent(cpuMax)}`,
      className: `${cls} spark-cpu`,
    }),
    mem: sparkline(mem, {
      now,
      windowMs,
      label: `Memory of ${name} over the last ${span}: now ${fmtBytes(u.memory_bytes)}, peak ${fmtBytes(memMax)}`,
      className: `${cls} spark-mem`,
    }),
  };
}

function buildRow(name) {
  const cells = {
    name: h("td", { role: "cell", class: "c-name", "data-label": "Unit" }),
    state: h("td", { role: "cell", class: "c-state", "data-label": "State" }),
    version: h("td", { role: "cell", class: "c-version", "data-label": "Version" }),
    health: h("td", { role: "cell", class: "c-health", "data-label": "Health" }),
    uptime: h("td", { role: "cell", class: "c-uptime num", "data-label": "Uptime" }),
    restarts: h("td", { role: "cell", class: "c-restarts num", "data-label": "Restarts" }),
    cpu: h("td", { role: "cell", class: "c-cpu", "data-label": "CPU" }),
    mem: h("td", { role: "cell", class: "c-mem", "data-label": "Memory" }),
  };
  const tr = h("tr", { role: "row", "data-unit": name }, ...Object.values(cells));
  return { tr, cells, key: "" };
}

function fillRow(row, u) {
  const { cells } = row;
  // Rebuild only what changed: keeps focus on the unit link while the stream updates the row.
  const key = JSON.stringify([u.description, u.protected, u.valid, u.error, u.enabled, u.changed_on_disk]);
  if (key !== row.key) {
    row.key = key;
    const badges = [];
    if (u.protected) badges.push(h("span", { class: "badge tag", title: "Only admins may stop, disable or remove it" }, "protected"));
    if (u.valid === false) badges.push(h("span", { class: "badge tag tag-bad", title: u.error || "" }, "invalid file"));
    if (u.changed_on_disk) badges.push(h("span", { class: "badge tag tag-warn", title: CHANGED_ON_DISK }, "changed on disk"));
    if (u.enabled === false) badges.push(h("span", { class: "badge tag tag-muted", title: "Not started at boot" }, "disabled"));
    replace(
      cells.name,
      h("a", { href: `#/units/${encodeURIComponent(u.name)}`, class: "unit-link" }, u.name),
      badges.length ? h("span", { class: "tags" }, ...badges) : null,
      u.description ? h("span", { class: "desc" }, u.description) : null,
    );
  }
  replace(cells.state, stateBadge(u));
  cells.state.dataset.since = String(u.since_us || 0);
  replace(cells.version, h("span", { class: "mono" }, u.version || "—"), updateBadges(u), u.image ? h("span", { class: "desc mono", title: u.image }, u.image) : null);
  replace(cells.health, healthBadge(u.health));
  cells.uptime.textContent = uptimeText(u);
  cells.uptime.title = u.since_us ? `${u.active_state} since ${new Date(sinceMs(u)).toLocaleString()}` : "";
  cells.restarts.textContent = String(u.n_restarts ?? 0);
  drawCharts(row, u);
}

function drawCharts(row, u) {
  const c = charts(u.name, u);
  replace(row.cells.cpu, h("span", { class: "metric" }, c.cpu, h("span", { class: "metric-val" }, fmtPercent(u.cpu_percent))));
  replace(row.cells.mem, h("span", { class: "metric" }, c.mem, h("span", { class: "metric-val" }, fmtBytes(u.memory_bytes))));
}

export function renderUnits(main, ctx) {
  ctx.setTitle("Units");
  const summary = h("p", { class: "summary", "aria-live": "off" });
  const filter = h("input", { type: "search", id: "unit-filter", placeholder: "name, image or state", autocomplete: "off" });
  const count = h("span", { class: "muted", role: "status" });
  const tbody = h("tbody", { role: "rowgroup" });
  const cols = ["Unit", "State", "Version", "Health", "Uptime", "Restarts", "CPU", "Memory"];
  const table = h(
    "table",
    { class: "units", role: "table", "aria-label": "Units", "aria-describedby": "units-summary" },
    h("thead", { role: "rowgroup" }, h("tr", { role: "row" }, ...cols.map((c) => h("th", { role: "columnheader", scope: "col", class: `c-${c.toLowerCase()}` }, c)))),
    tbody,
  );
  summary.id = "units-summary";
  const empty = h("div", { class: "empty", hidden: true });
  const status = h("p", { class: "loading" }, "Loading units…");
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Units"), summary,
      // Creating needs an operator or admin (the daemon decides; a viewer gets no link to it).
      can("operator")
        ? h("div", { class: "row page-actions" },
          h("a", { href: "#/new-unit", class: "btn btn-primary", id: "units-new" }, "New unit"),
          h("a", { href: "#/import", class: "btn", id: "units-import" }, "Import Compose"))
        : null),
    h("div", { class: "toolbar" }, h("label", { for: "unit-filter" }, "Filter"), filter, count),
    status,
    h("div", { class: "table-wrap" }, table),
    empty,
  );

  const rows = new Map();
  function matches(u) {
    const q = filter.value.trim().toLowerCase();
    if (!q) return true;
    return [u.name, u.image, u.version, u.active_state, u.sub_state, u.description, u.health]
      .filter(Boolean)
      .some((s) => String(s).toLowerCase().includes(q));
  }

  function render() {
    const units = [...live.units.values()].sort((a, b) => a.name.localeCompare(b.name));
    status.hidden = live.received;
    let shown = 0;
    const seen = new Set();
    let prev = null;
    for (const u of units) {
      seen.add(u.name);
      let row = rows.get(u.name);
      if (!row) {
        row = buildRow(u.name);
        rows.set(u.name, row);
      }
      fillRow(row, u);
      const show = matches(u);
      row.tr.hidden = !show;
      if (show) shown++;
      // Keep DOM order sorted without moving rows that are already in place (focus stays).
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row.tr) tbody.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    const by = (s) => units.filter((u) => u.active_state === s).length;
    const failed = by("failed");
    if (units.length) {
      replace(
        summary,
        `${units.length} unit${units.length === 1 ? "" : "s"}: ${by("active")} active, `,
        h("span", { class: failed ? "n-failed" : "" }, `${failed} failed`),
        `, ${units.length - by("active") - failed} other`,
      );
    } else replace(summary);
    count.textContent = filter.value.trim() ? `${shown} of ${units.length} shown` : "";
    table.hidden = live.received && units.length === 0;
    empty.hidden = !(live.received && units.length === 0);
    if (!empty.hidden && !empty.firstChild) {
      empty.append(
        h("h2", {}, "No units yet"),
        h("p", {}, "Describe a container in ", h("code", {}, "/etc/containerctl/units/NAME.toml"), " (see ", h("code", {}, "man containerctl.unit"), "), create one with ", h("code", {}, "containerctl new NAME --image IMAGE --version TAG"), can("operator") ? [", with ", h("a", { href: "#/new-unit" }, "New unit"), ", or import a Compose file"] : null, "."),
      );
    }
  }

  // The stream may send several lists a second (state changes, resource samples): redraw at most
  // about twice a second; the samples are recorded for the charts either way.
  let lastDraw = 0;
  let drawTimer = null;
  function scheduleRender() {
    if (drawTimer) return;
    const wait = Math.max(0, 500 - (Date.now() - lastDraw));
    drawTimer = setTimeout(() => {
      drawTimer = null;
      lastDraw = Date.now();
      render();
    }, wait);
  }
  filter.addEventListener("input", render);
  const off = onUnits(scheduleRender);
  render();

  // Until the stream's first event arrives, fetch the list once so the page never waits on it.
  if (!live.received) {
    api("GET", "/units", undefined, { signal: ctx.signal })
      .then((list) => {
        if (!live.received) applyUnits(list);
      })
      .catch((e) => {
        if (e.name === "AbortError") return;
        status.textContent = `Could not load the units: ${e.message}`;
      });
  }

  // Uptimes tick every second; the charts slide every 5 seconds.
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    for (const [name, row] of rows) {
      const u = live.units.get(name);
      if (!u) continue;
      row.cells.uptime.textContent = uptimeText(u);
      if (tick % 5 === 0) drawCharts(row, u);
    }
  }, 1000);

  return () => {
    off();
    clearInterval(timer);
    clearTimeout(drawTimer);
  };
}


// One unit: state and actions, then four sections (#/units/NAME, …/config, …/history, …/logs).

import { h, replace, clear, announce, diffView, fmtBytes, fmtPercent, timeEl, newId, lockIcon, tableRoles } from "./dom.js";
import { api, ApiError, NetworkError, unitPath, live, applyUnit, onUnits, readNdjson, can, session } from "./api.js";
import { stateBadge, healthBadge, uptimeText, sinceMs, charts, CHANGED_ON_DISK, updateBadges } from "./units.js";
import { createEditor } from "./editor.js";
import { errorDetails, createChecker, warningsNote } from "./diag.js";
import { writeUnit } from "./toml.js";
import { unitForm } from "./unitform.js";
import { updateAction } from "./update.js";
import { removeAction } from "./remove.js";
import { moveAction } from "./moves.js";

const drafts = new Map(); // unit name -> unsaved editor text (kept while moving between sections)
/** Unit name -> what to show once on its page (the New unit view's outcome: warnings, the start). */
export const notices = new Map();

const TABS = [
  ["overview", "Overview", ""],
  ["config", "Config", "/config"],
  ["history", "History", "/history"],
  ["logs", "Logs", "/logs"],
];

const VERBS = {
  start: { label: "Start", busy: "Starting", done: "Started" },
  stop: { label: "Stop", busy: "Stopping", done: "Stopped" },
  restart: { label: "Restart", busy: "Restarting", done: "Restarted" },
  enable: { label: "Enable at boot", busy: "Enabling", done: "Enabled" },
  disable: { label: "Disable at boot", busy: "Disabling", done: "Disabled" },
};

/** Why the current role may not run `verb` on `u`, or null when it may. */
export function denial(verb, u) {
  if (!can("operator"))
    return `You are logged in with the ${session.role} role, which can look but not change anything. Starting, stopping, restarting and editing need an operator or admin token.`;
  if ((verb === "stop" || verb === "disable") && u && u.protected && !can("admin"))
    return "This unit is protected (protected = true in its file): only admins may stop or disable it.";
  return null;
}

export function renderUnit(main, name, tab, ctx) {
  ctx.setTitle(name);
  const cleanups = [];
  const headingId = newId("unit-h");
  const stateSlot = h("span", { class: "state-slot" });
  const desc = h("p", { class: "unit-desc" });
  const meta = h("p", { class: "unit-meta muted" });
  const actions = h("div", { class: "actions", role: "group", "aria-label": `Actions for ${name}` });
  const permNoteId = newId("perm");
  const permNote = h("p", { id: permNoteId, class: "perm-note", hidden: true });
  const jobOut = h("div", { class: "job-out", "aria-live": "polite" });
  const content = h("div", { class: "tab-content" });

  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": `Sections of ${name}` },
    h(
      "ul",
      {},
      ...TABS.map(([key, label, suffix]) =>
        h("li", {}, h("a", { href: `#/units/${encodeURIComponent(name)}${suffix}`, "aria-current": key === tab ? "page" : null }, label)),
      ),
    ),
  );

  replace(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/units" }, "Units"), h("span", { "aria-hidden": "true" }, " / "), h("span", { "aria-current": "page" }, name)),
    h(
      "header",
      { class: "unit-head" },
      h("div", { class: "unit-title" }, h("h1", { id: headingId }, name), stateSlot),
      desc,
      meta,
      h("div", { class: "action-bar" }, actions, permNote),
      jobOut,
    ),
    tabs,
    content,
  );

  // ---------- header: state and actions ----------

  let busy = null;
  let busyStart = 0;
  let busyTimer = null;
  const buttons = {};
  for (const verb of ["start", "stop", "restart"]) {
    buttons[verb] = h(
      "button",
      { type: "button", class: `btn btn-${verb}`, "data-action": verb, onclick: () => runJob(verb) },
      VERBS[verb].label,
    );
    actions.append(buttons[verb]);
  }
  buttons.enable = h("button", { type: "button", class: "btn btn-ghost", "data-action": "enable", onclick: () => runJob(current()?.enabled === false ? "enable" : "disable") });
  actions.append(buttons.enable);
  // Updating edits the file and restarts: operators and admins only; a viewer gets no button.
  if (can("operator")) {
    const up = updateAction(name, { signal: ctx.signal, errorDetails });
    actions.append(up.button);
    jobOut.after(up.panel);
    cleanups.push(up.cleanup);
    // Moving stops, disables and edits the unit: operators and admins, on a cluster member.
    const mv = moveAction(name, { signal: ctx.signal, errorDetails });
    actions.append(mv.button);
    up.panel.after(mv.panel);
    cleanups.push(mv.cleanup);
    mv.button.hidden = true;
    api("GET", "/cluster", undefined, { signal: ctx.signal }).then(
      (c) => {
        mv.button.hidden = !(c && c.member);
      },
      () => {
        mv.button.hidden = true;
      },
    );
  }
  const rm = removeAction(name, { signal: ctx.signal });
  actions.append(rm.button);
  jobOut.after(rm.dialog);
  if (notices.has(name)) {
    replace(jobOut, ...notices.get(name));
    notices.delete(name);
  }

  function current() {
    return live.units.get(name);
  }

  function paintHeader() {
    const u = current();
    if (!u) return;
    replace(stateSlot, stateBadge(u));
    stateSlot.dataset.since = String(u.since_us || 0);
    desc.textContent = u.description || "";
    const bits = [`${u.image || "?"}:${u.version || "?"}`];
    if (u.protected) bits.push("protected");
    bits.push(u.enabled === false ? "not started at boot" : "started at boot");
    meta.textContent = bits.join(" · ");
    rm.paint(u);
    const toggle = u.enabled === false ? "enable" : "disable";
    buttons.enable.dataset.action = toggle;
    if (busy !== toggle) buttons.enable.textContent = VERBS[toggle].label;
    const reasons = new Set();
    for (const [key, btn] of Object.entries(buttons)) {
      const verb = key === "enable" ? toggle : key;
      const why = denial(verb, u);
      if (why) reasons.add(why);
      btn.disabled = Boolean(busy) || Boolean(why);
      btn.setAttribute("aria-disabled", btn.disabled ? "true" : "false");
      if (why) {
        btn.title = why;
        btn.setAttribute("aria-describedby", permNoteId);
      } else {
        btn.removeAttribute("title");
        btn.removeAttribute("aria-describedby");
      }
    }
    permNote.hidden = reasons.size === 0;
    replace(permNote, ...[...reasons].map((r) => h("span", { class: "perm-line" }, lockIcon(), " ", r)));
  }

  async function runJob(verb) {
    if (busy) return;
    busy = verb;
    busyStart = Date.now();
    const btn = verb === "enable" || verb === "disable" ? buttons.enable : buttons[verb];
    const text = VERBS[verb];
    btn.classList.add("is-busy");
    replace(btn, h("span", { class: "spinner", "aria-hidden": "true" }), `${text.busy}…`);
    actions.setAttribute("aria-busy", "true");
    const progress = h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), `${text.busy} ${name}…`);
    const elapsed = h("span", { class: "muted" });
    progress.append(" ", elapsed);
    replace(jobOut, progress);
    busyTimer = setInterval(() => {
      elapsed.textContent = `${Math.round((Date.now() - busyStart) / 1000)} s`;
    }, 1000);
    announce(`${text.busy} ${name}`);
    paintHeader();
    try {
      const r = await api("POST", unitPath(name, `/${verb}`));
      if (r && r.state) applyUnit(r.state);
      const u = (r && r.state) || current();
      const state = u ? `${u.active_state}${u.sub_state ? ` (${u.sub_state})` : ""}` : "";
      const msg = verb === "enable" || verb === "disable" ? `${text.done} ${name}.` : `${text.done} ${name}: ${state}.`;
      replace(jobOut, h("p", { class: "job-ok" }, h("span", { "aria-hidden": "true" }, "✓ "), msg));
      announce(msg);
    } catch (e) {
      if (e.name === "AbortError") return;
      const title = `${VERBS[verb].label} failed`;
      replace(
        jobOut,
        h("div", { class: "job-err card-err", role: "alert" }, h("h2", { class: "h3" }, title), ...errorDetails(e), h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => replace(jobOut) }, "Dismiss")),
      );
    } finally {
      clearInterval(busyTimer);
      busy = null;
      btn.classList.remove("is-busy");
      actions.removeAttribute("aria-busy");
      if (btn === buttons.enable) btn.textContent = VERBS[current()?.enabled === false ? "enable" : "disable"].label;
      else btn.textContent = VERBS[verb].label;
      paintHeader();
    }
  }
  cleanups.push(() => clearInterval(busyTimer));

  let announcedState = current()?.active_state;
  cleanups.push(
    onUnits((changes) => {
      const c = changes.find((x) => x.name === name);
      if (!c) return;
      if (!c.after) {
        replace(stateSlot, h("span", { class: "badge tag tag-bad" }, "removed"));
        return;
      }
      paintHeader();
      if (c.after.active_state !== announcedState) {
        announcedState = c.after.active_state;
        if (!busy) announce(`${name} is ${c.after.active_state}`);
      }
    }),
  );
  paintHeader();

  // Without the unit in the live list yet, load it once (also tells a missing unit apart).
  if (!current()) {
    api("GET", unitPath(name), undefined, { signal: ctx.signal })
      .then((d) => {
        if (!current()) applyUnit(stripDetail(d));
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) notFound();
      });
  }

  function notFound() {
    replace(
      main,
      h("h1", { tabindex: "-1" }, `No unit named “${name}”`),
      h("p", {}, "It has no unit file and no loaded instance. ", h("a", { href: "#/units" }, "See all units"), "."),
    );
  }

  const sectionCtx = { ...ctx, name, notFound, headingId };
  const section = h("section", { class: "tab-panel", "aria-label": TABS.find((t) => t[0] === tab)?.[1] || "Overview" });
  content.append(section);
  let done = null;
  if (tab === "config") done = configTab(section, sectionCtx);
  else if (tab === "history") done = historyTab(section, sectionCtx);
  else if (tab === "logs") done = logsTab(section, sectionCtx);
  else done = overviewTab(section, sectionCtx);
  if (done) cleanups.push(done);

  return () => cleanups.forEach((f) => f());
}

function stripDetail(d) {
  const u = { ...d };
  delete u.text;
  delete u.events;
  delete u.log;
  delete u.log_dropped;
  return u;
}

function loadError(section, e, retry) {
  if (e.name === "AbortError") return;
  replace(
    section,
    h("div", { class: "card-err", role: "alert" }, h("p", {}, e instanceof NetworkError ? "containerctld cannot be reached." : `Could not load this section: ${e.message}`), h("button", { type: "button", class: "btn btn-small", onclick: retry }, "Try again")),
  );
}

// ---------- overview ----------

function overviewTab(section, ctx) {
  const { name } = ctx;
  const facts = h("dl", { class: "facts" });
  const cpuBox = h("div", { class: "chart" });
  const memBox = h("div", { class: "chart" });
  const events = h("ol", { class: "events" });
  const logBox = h("div", { class: "log log-short", role: "log", "aria-label": `Last log lines of ${name}`, tabindex: "0" });
  replace(
    section,
    h("div", { class: "grid-2" },
      h("div", { class: "card" }, h("h2", {}, "Status"), facts),
      h("div", { class: "card" }, h("h2", {}, "Resources"), h("h3", { class: "chart-title" }, "CPU"), cpuBox, h("h3", { class: "chart-title" }, "Memory"), memBox, h("p", { class: "muted small" }, "Up to the last 5 minutes, from the samples received while this page is open."))),
    h("div", { class: "grid-2" },
      h("div", { class: "card" }, h("h2", {}, "Recent events"), events),
      h("div", { class: "card" }, h("h2", {}, "Recent log"), logBox, h("p", {}, h("a", { href: `#/units/${encodeURIComponent(name)}/logs` }, "Follow the log live")))),
  );

  let logDrop = null; // journald's latest report of lines of this unit its rate limit dropped

  function paintFacts() {
    const u = live.units.get(name);
    if (!u) return;
    const rows = [
      ["State", stateBadge(u)],
      ["Result", u.result || "—"],
      ["Status", u.status_text || "—"],
      ["Since", u.since_us ? timeEl(sinceMs(u)) : "—"],
      ["Uptime", uptimeText(u)],
      ["Health", healthBadge(u.health)],
      ["Restarts", String(u.n_restarts ?? 0)],
      ["Last exit", exitText(u)],
      ["Main PID", u.main_pid ? String(u.main_pid) : "—"],
      ["Image", h("code", {}, `${u.image || "?"}:${u.version || "?"}`)],
      ["Updates", updateBadges(u, { long: true }) || "—"],
      ["File", u.source ? h("code", {}, u.source) : "—"],
      ["File valid", u.valid === false ? h("span", { class: "bad" }, `no: ${u.error || "invalid"}`) : "yes"],
    ];
    if (u.changed_on_disk) rows.push(["Loaded", h("span", { class: "warn-text changed-on-disk" }, CHANGED_ON_DISK)]);
    if (logDrop) rows.push(["Log drop", logDropText(logDrop)]);
    replace(facts, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const c = charts(name, u, { big: true });
    replace(cpuBox, c.cpu, h("span", { class: "metric-val" }, fmtPercent(u.cpu_percent)));
    replace(memBox, c.mem, h("span", { class: "metric-val" }, fmtBytes(u.memory_bytes)));
  }

  const off = onUnits((changes) => {
    const c = changes.find((x) => x.name === name);
    if (!c || !c.after) return;
    paintFacts();
    if (c.before && (c.before.active_state !== c.after.active_state || c.before.sub_state !== c.after.sub_state)) {
      events.prepend(
        h("li", { class: "event event-live" }, timeEl(Date.now()), " ", h("span", { class: "ev-kind" }, "state"), ` ${c.before.active_state} → ${c.after.active_state}${c.after.sub_state ? ` (${c.after.sub_state})` : ""}`),
      );
    }
  });
  const timer = setInterval(paintFacts, 5000);
  paintFacts();

  const load = () =>
    api("GET", unitPath(name), undefined, { signal: ctx.signal })
      .then((d) => {
        if (!live.units.has(name)) applyUnit(stripDetail(d));
        logDrop = d.log_dropped || null;
        paintFacts();
        facts.dataset.loaded = "true"; // the unit's detail (log drop) is in
        replace(events, ...(d.events || []).map((ev) => h("li", { class: `event ev-${ev.kind}` }, timeEl(ev.at_ms), " ", h("span", { class: "ev-kind" }, ev.kind), ev.detail ? ` ${ev.detail}` : "")));
        if (!(d.events || []).length) events.append(h("li", { class: "muted" }, "No events recorded yet."));
        replace(logBox, ...(d.log || []).map((l) => logLine(l, name)));
        if (!(d.log || []).length) logBox.append(h("p", { class: "muted" }, "No log lines yet."));
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) ctx.notFound();
        else if (e.name !== "AbortError") replace(events, h("li", { class: "bad" }, `Could not load: ${e.message}`));
      });
  load();
  return () => {
    off();
    clearInterval(timer);
  };
}

/** What `containerctl status` says of a drop: how many lines, when journald reported it, why. */
function logDropText(d) {
  const at = d.at_us ? Math.floor(d.at_us / 1000) : 0;
  return h(
    "span",
    { class: "warn-text log-drop", "data-dropped": d.dropped, title: d.message || "" },
    `${d.dropped} lines dropped`,
    at ? h("span", {}, " at ", timeEl(at)) : null,
    " by journald's rate limit (",
    h("code", {}, "service.log_rate_limit"),
    ")",
  );
}

function exitText(u) {
  if (!u.exit_code) return "—";
  if (u.exit_code === 1) return `exited with status ${u.exit_status}`;
  if (u.exit_code === 2) return `killed by signal ${u.exit_status}`;
  if (u.exit_code === 3) return `dumped core (signal ${u.exit_status})`;
  return `code ${u.exit_code}, status ${u.exit_status}`;
}

// ---------- logs ----------

export function logLine(l, unit) {
  const p = Number.isFinite(l.priority) ? l.priority : 6;
  const cls = ["ll", p <= 3 ? "ll-err" : p === 4 ? "ll-warn" : p >= 7 ? "ll-debug" : "ll-info"];
  if (l.identifier && unit && l.identifier !== unit) cls.push("ll-sys");
  const t = l.at_us ? new Date(Math.floor(l.at_us / 1000)) : null;
  const label = p <= 3 ? "error" : p === 4 ? "warning" : null;
  return h(
    "div",
    { class: cls, "data-priority": p },
    t ? h("time", { datetime: t.toISOString(), class: "ll-time" }, `${t.toLocaleTimeString(undefined, { hour12: false })}.${String(t.getMilliseconds()).padStart(3, "0")}`) : null,
    l.identifier && l.identifier !== unit ? h("span", { class: "ll-ident" }, l.identifier) : null,
    label ? h("span", { class: "visually-hidden" }, `${label}: `) : null,
    h("span", { class: "ll-msg" }, l.message ?? ""),
  );
}

function logsTab(section, ctx) {
  const { name } = ctx;
  const MAX = 2000;
  const box = h("div", { class: "log log-tall", role: "log", "aria-live": "off", "aria-label": `Log of ${name}`, tabindex: "0" });
  const status = h("span", { class: "log-status", role: "status" }, "Connecting…");
  const pauseBtn = h("button", { type: "button", class: "btn btn-small", "aria-pressed": "false" }, "Pause");
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const filter = h("input", { type: "search", id: "log-filter", placeholder: "text in the message", autocomplete: "off" });
  const clearBtn = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Clear");
  replace(
    section,
    h("div", { class: "toolbar" }, pauseBtn, h("label", { class: "check", for: "log-follow" }, follow, " Scroll to new lines"), h("label", { for: "log-filter" }, "Filter"), filter, clearBtn, status),
    box,
    h("p", { class: "muted small" }, "Standard error lines are marked as warnings; lines from containerctl itself are shown with their source. The last 100 lines, then new ones as they arrive."),
  );

  let paused = false;
  let pending = [];
  let count = 0;
  let lastAt = 0;
  let seenAtLast = new Set();
  let ctl = null;
  let retryTimer = null;
  let stopped = false;

  function matches(el) {
    const q = filter.value.trim().toLowerCase();
    return !q || el.textContent.toLowerCase().includes(q);
  }

  function add(l) {
    const at = l.at_us || 0;
    const key = `${at}|${l.message}`;
    if (at && at < lastAt) return; // seen before a reconnect
    if (at && at === lastAt && seenAtLast.has(key)) return;
    if (at > lastAt) {
      lastAt = at;
      seenAtLast = new Set();
    }
    seenAtLast.add(key);
    const el = logLine(l, name);
    if (paused) {
      pending.push(el);
      if (pending.length > MAX) pending.shift();
      status.textContent = `Paused · ${pending.length} new line${pending.length === 1 ? "" : "s"} waiting`;
      return;
    }
    put([el]);
  }

  function put(els) {
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
    const frag = document.createDocumentFragment();
    for (const el of els) {
      el.hidden = !matches(el);
      frag.append(el);
    }
    box.append(frag);
    count += els.length;
    while (box.childElementCount > MAX) box.firstElementChild.remove();
    if (follow.checked && (atBottom || count <= els.length)) box.scrollTop = box.scrollHeight;
    if (!paused) status.textContent = `Following · ${Math.min(count, MAX)} line${count === 1 ? "" : "s"}`;
  }

  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.setAttribute("aria-pressed", String(paused));
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      put(pending);
      pending = [];
    } else status.textContent = "Paused";
  });
  clearBtn.addEventListener("click", () => {
    clear(box);
    count = 0;
  });
  filter.addEventListener("input", () => {
    for (const el of box.children) el.hidden = !matches(el);
  });

  async function connect() {
    if (stopped) return;
    ctl = new AbortController();
    const abort = () => ctl.abort();
    ctx.signal.addEventListener("abort", abort, { once: true });
    status.textContent = "Connecting…";
    try {
      await readNdjson(unitPath(name, "/logs?n=100&follow=true"), add, ctl.signal);
      if (!paused) status.textContent = "The log stream ended. Reconnecting in 3 s…";
    } catch (e) {
      if (e.name === "AbortError" || stopped) return;
      if (e instanceof ApiError && e.status === 404) return ctx.notFound();
      if (e instanceof ApiError && e.status === 401) return;
      status.textContent = `${e instanceof NetworkError ? "Disconnected" : e.message}. Reconnecting in 3 s…`;
    } finally {
      ctx.signal.removeEventListener("abort", abort);
    }
    if (!stopped) retryTimer = setTimeout(connect, 3000);
  }
  connect();
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    if (ctl) ctl.abort();
  };
}

// ---------- configuration: form + editor + preview + apply ----------

function configTab(section, ctx) {
  const { name } = ctx;
  replace(section, h("p", { class: "loading" }, "Loading the unit file…"));
  let stopped = false;
  let teardown = null;
  const load = () =>
    api("GET", unitPath(name, "/file"), undefined, { signal: ctx.signal })
      .then((f) => {
        if (!stopped) teardown = buildConfig(section, ctx, f);
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) return ctx.notFound();
        loadError(section, e, load);
      });
  load();
  return () => {
    stopped = true;
    if (teardown) teardown();
  };
}

function buildConfig(section, ctx, file) {
  const { name } = ctx;
  let base = file.text; // the file as it is on disk
  const mayEdit = can("operator");
  const draft = drafts.get(name);

  // --- editor ---
  const diffBox = h("div", { class: "diff-slot" });
  const restart = h("input", { type: "checkbox", id: "apply-restart", checked: true });
  const applyBtn = h("button", { type: "button", class: "btn btn-primary", id: "apply" }, "Apply");
  const applyWhy = h("span", { id: "apply-why", class: "muted small" });
  const resetBtn = h("button", { type: "button", class: "btn btn-ghost" }, "Discard changes");
  const checkBtn = h("button", { type: "button", class: "btn" }, "Check now");
  const applyOut = h("div", { class: "apply-out" });

  const ed = createEditor({
    id: "unit-text",
    label: `Unit file ${file.path || `${name}.toml`}`,
    describedBy: "diag-summary",
    text: draft ?? base,
    onInput: () => {
      if (ed.text !== base) drafts.set(name, ed.text);
      else drafts.delete(name);
      if (mayEdit) check.schedule();
    },
  });
  if (!mayEdit) ed.textarea.readOnly = true;
  const check = createChecker({
    ed,
    signal: ctx.signal,
    name: () => name,
    path: () => file.path || `${name}.toml`,
    onResult(r) {
      replace(diffBox, diffView(r.diff || "", { label: "Changes to the unit file" }));
      if (!uf.dirty && document.activeElement?.closest?.(".quick-form") == null) fillForm();
    },
    onState: () => updateApply(),
  });
  const runPreview = () => check.run();

  // --- form ---
  const uf = unitForm({
    mayEdit,
    signal: ctx.signal,
    labelledBy: "quick-h",
    submitLabel: "Write to the editor and check",
    onSubmit(values) {
      let text;
      try {
        text = writeUnit(ed.text, values);
      } catch (e) {
        uf.error(`The editor's text cannot be changed by the form: ${e.message}`);
        return;
      }
      uf.dirty = false;
      if (text === ed.text) {
        announce("The form matches the editor already");
        check.say("No changes from the form.");
        return;
      }
      ed.setText(text);
      if (text !== base) drafts.set(name, text);
      announce("Editor updated from the form; checking");
      runPreview().then(() => diffBox.scrollIntoView({ block: "nearest", behavior: "smooth" }));
    },
  });
  const form = uf.form;
  const fillForm = () => uf.fill(ed.text);

  replace(
    section,
    h("div", { class: "config-grid" },
      h("div", { class: "card" }, h("h2", { id: "quick-h" }, "Quick edit"), h("p", { class: "muted small" }, "Changes these keys of [container] in the text of the file. Review the changes below, then apply."), form),
      h("div", { class: "card editor-card" },
        h("h2", {}, "Unit file"),
        h("p", { class: "muted small" }, h("code", {}, file.path || ""), file.revision !== null && file.revision !== undefined ? ` · revision ${file.revision}` : "", mayEdit ? "" : " · read only for your role"),
        draft !== undefined && draft !== base ? h("p", { class: "note" }, "Your unsaved changes from before are restored.") : null,
        ed.el,
        h("div", { class: "check-row" }, check.summary, checkBtn),
        check.list,
        check.violations,
      ),
    ),
    h("div", { class: "card", hidden: !mayEdit },
      h("h2", {}, "Changes"),
      diffBox,
      h("div", { class: "apply-row" },
        h("label", { class: "check", for: "apply-restart" }, restart, " Restart the unit after applying (if it is running)"),
        h("div", { class: "row" }, applyBtn, resetBtn, applyWhy)),
      applyOut),
  );

  function updateApply() {
    let why = "";
    if (!mayEdit) why = "Your role can read but not change units.";
    else if (!check.last) why = "Checking the text…";
    else if ((check.last.r.diagnostics || []).length || check.last.r.valid === false) why = "Fix the errors first.";
    else if ((check.last.r.violations || []).length) why = "The policy refuses this definition.";
    else if (!check.last.r.changed) why = "Nothing to apply: the text is the file's.";
    applyBtn.disabled = Boolean(why);
    applyWhy.textContent = why;
    applyBtn.setAttribute("aria-describedby", "apply-why");
    resetBtn.disabled = ed.text === base;
  }

  checkBtn.addEventListener("click", () => runPreview());

  resetBtn.addEventListener("click", () => {
    ed.setText(base);
    drafts.delete(name);
    fillForm();
    announce("Changes discarded");
    runPreview();
  });

  applyBtn.addEventListener("click", async () => {
    const text = ed.text;
    applyBtn.disabled = true;
    replace(applyOut, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), restart.checked ? "Applying and restarting…" : "Applying…"));
    try {
      const r = await api("PUT", unitPath(name, "/file"), { text, restart: restart.checked });
      base = text;
      drafts.delete(name);
      const msg = `Saved ${name}${r.revision !== null && r.revision !== undefined ? ` as revision ${r.revision}` : ""}${r.restarted ? ", restarted" : r.changed ? "" : " (no change)"}.`;
      const warnings = Array.isArray(r.warnings) ? r.warnings : [];
      replace(applyOut, h("p", { class: "job-ok" }, h("span", { "aria-hidden": "true" }, "✓ "), msg), warningsNote(warnings));
      announce(warnings.length ? `${msg} ${warnings.length} warning${warnings.length === 1 ? "" : "s"}.` : msg);
      runPreview();
    } catch (e) {
      if (e.name === "AbortError") return;
      check.showInvalid(e, text);
      replace(applyOut, h("div", { class: "card-err", role: "alert" }, h("h3", {}, "Not applied"), ...errorDetails(e, text)));
      updateApply();
    }
  });

  fillForm();
  updateApply();
  if (mayEdit) runPreview();
  else {
    check.say("Read only: changing a unit needs an operator or admin token.", "muted");
    checkBtn.hidden = true;
  }
  return () => check.stop();
}

// ---------- history ----------

function historyTab(section, ctx) {
  const { name } = ctx;
  const mayEdit = can("operator");
  const review = h("div", { class: "review" });
  const tbody = h("tbody", {});
  const table = h(
    "table",
    { class: "list history" },
    h("caption", { class: "visually-hidden" }, `Revisions of ${name}, newest first`),
    h("thead", {}, h("tr", {}, ...["Revision", "When", "Who", "Action", "Size", ""].map((c, i) => h("th", { scope: "col" }, i === 5 ? h("span", { class: "visually-hidden" }, "Actions") : c)))),
    tbody,
  );
  replace(section, h("p", { class: "loading" }, "Loading the history…"));

  const load = () =>
    api("GET", unitPath(name, "/history"), undefined, { signal: ctx.signal })
      .then((list) => {
        clear(tbody);
        if (!list.length) {
          replace(section, h("p", { class: "empty" }, "No revisions recorded yet: the file has not been changed through containerctl."));
          return;
        }
        list.forEach((r, i) => {
          const btn = h(
            "button",
            { type: "button", class: "btn btn-small", "data-rev": r.rev, disabled: r.action === "rm" },
            i === 0 ? "View" : mayEdit ? "Review revert" : "View",
          );
          btn.addEventListener("click", () => openReview(r, i === 0, btn));
          tbody.append(
            h("tr", { "data-rev": r.rev },
              h("td", { "data-label": "Revision" }, h("strong", {}, String(r.rev)), i === 0 ? h("span", { class: "badge tag" }, "latest") : null),
              h("td", { "data-label": "When" }, timeEl(r.at_ms)),
              h("td", { "data-label": "Who" }, r.actor || "—"),
              h("td", { "data-label": "Action" }, r.action),
              h("td", { "data-label": "Size", class: "num" }, `${r.size ?? "?"} B`),
              h("td", { "data-label": "" }, btn)),
          );
        });
        replace(section, h("div", { class: "card" }, h("h2", {}, "Revisions"), h("div", { class: "table-wrap" }, tableRoles(table))), review);
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) return ctx.notFound();
        loadError(section, e, load);
      });

  async function openReview(r, latest, opener) {
    const heading = h("h2", { tabindex: "-1" }, latest ? `Revision ${r.rev} (latest)` : mayEdit ? `Revert to revision ${r.rev}?` : `Revision ${r.rev}`);
    const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
    replace(review, h("div", { class: "card", role: "region", "aria-label": `Revision ${r.rev}` }, heading, body));
    heading.focus();
    try {
      const rev = await api("GET", unitPath(name, `/revisions/${encodeURIComponent(r.rev)}`), undefined, { signal: ctx.signal });
      const parts = [h("p", { class: "muted" }, `${rev.action} by ${rev.actor || "?"}, `, timeEl(rev.at_ms))];
      let pv;
      if (mayEdit) {
        // What a revert would write, checked as an edit would be.
        pv = await api("POST", unitPath(name, "/preview"), { text: rev.text }, { signal: ctx.signal });
        parts.push(h("h3", {}, "Changes from the current file to this revision"), diffView(pv.diff || "", { label: `Changes if reverted to revision ${r.rev}` }));
      } else {
        const d = await api("GET", unitPath(name, `/diff?from=${encodeURIComponent(r.rev)}`), undefined, { signal: ctx.signal }).catch((e) => {
          if (e instanceof ApiError && e.status === 404) return { diff: "" };
          throw e;
        });
        pv = { changed: Boolean(d.diff), valid: true, diagnostics: [], violations: [] };
        parts.push(h("h3", {}, "Changes from this revision to the current file"), diffView(d.diff || "", { label: `Changes since revision ${r.rev}` }));
      }
      if ((pv.diagnostics || []).length || (pv.violations || []).length) {
        parts.push(h("div", { class: "card-err" }, h("p", {}, "This revision would not be accepted now:"), ...errorDetails({ message: "", detail: pv }, rev.text)));
      }
      parts.push(h("details", {}, h("summary", {}, `Full text of revision ${r.rev}`), h("pre", { class: "code-view", tabindex: "0" }, rev.text)));
      const out = h("div", { "aria-live": "polite" });
      const cancel = h("button", { type: "button", class: "btn btn-ghost", onclick: () => { clear(review); opener.focus(); } }, "Close");
      if (mayEdit && pv.changed) {
        const rs = h("input", { type: "checkbox", id: "revert-restart", checked: true });
        const go = h("button", { type: "button", class: "btn btn-primary", disabled: !pv.valid || (pv.violations || []).length > 0 }, `Revert to revision ${r.rev}`);
        go.addEventListener("click", async () => {
          go.disabled = true;
          replace(out, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Reverting…"));
          try {
            const a = await api("POST", unitPath(name, "/revert"), { rev: r.rev, restart: rs.checked });
            drafts.delete(name);
            const msg = `Reverted ${name} to revision ${r.rev}${a.revision !== null && a.revision !== undefined ? ` (now revision ${a.revision})` : ""}${a.restarted ? ", restarted" : ""}.`;
            announce(msg);
            await load();
            replace(review, h("p", { class: "job-ok", role: "status" }, `✓ ${msg}`));
          } catch (e) {
            go.disabled = false;
            replace(out, h("div", { class: "card-err", role: "alert" }, ...errorDetails(e, rev.text)));
          }
        });
        parts.push(h("label", { class: "check", for: "revert-restart" }, rs, " Restart the unit after reverting (if it is running)"), h("div", { class: "row" }, go, cancel), out);
      } else {
        if (!pv.changed) parts.push(h("p", { class: "muted" }, "This revision's text is the current file."));
        parts.push(h("div", { class: "row" }, cancel));
      }
      replace(body, ...parts);
    } catch (e) {
      if (e.name === "AbortError") return;
      replace(body, h("div", { class: "card-err", role: "alert" }, ...errorDetails(e)));
    }
  }

  load();
  return null;
}


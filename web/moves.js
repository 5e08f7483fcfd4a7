// Moves on the web page: a unit's Move action (pick a member, see the dry run's plan and
// blockers, then follow the move from its NDJSON stream to the outcome) and the Cluster page's
// card of this host's moves (under way, then the history, from GET /moves). A move runs in the
// daemon's own task: leaving the page stops the reading, not the move.

import { h, replace, clear, announce, newId, disclosure } from "./dom.js";
import { api, ApiError, readNdjson, unitPath } from "./api.js";

const MARK = { running: "…", done: "✓", skipped: "·", failed: "✗" };
const STEP_WORDS = {
  forward: "Forward",
  preflight: "Check",
  image: "Image",
  "warm copy": "Copy while it runs",
  stop: "Stop",
  delta: "Changes",
  copy: "Copy",
  start: "Start there",
  disable: "Disable here",
  undo: "Undo",
};
const MB = (b) => `${((b || 0) / 1048576).toFixed(1)} MB`;

/**
 * The Move button and its panel for unit `name`. `errorDetails(e)` renders an API refusal;
 * `signal` ends the reading when the page goes. Returns {button, panel, cleanup}.
 */
export function moveAction(name, { signal, errorDetails }) {
  const panelId = newId("move-panel");
  const button = h("button", { type: "button", class: "btn", "data-action": "move", "aria-expanded": "false", "aria-controls": panelId }, "Move…");
  const headId = newId("move-h");
  const panel = h("section", { id: panelId, class: "card move-panel", "aria-labelledby": headId, hidden: true });
  let running = false;
  let ctl = null;

  const select = h("select", { id: "move-to", "aria-describedby": "move-to-help" });
  const warm = h("input", { id: "move-warm", type: "checkbox" });
  const keep = h("input", { id: "move-keep", type: "checkbox" });
  const dry = h("button", { type: "button", class: "btn", id: "move-dry-run" }, "Dry run");
  const go = h("button", { type: "submit", class: "btn btn-primary", id: "move-go" }, "Move");
  const close = h("button", { type: "button", class: "btn btn-ghost" }, "Close");
  const about = h("p", { class: "muted move-about" }, "Asking the cluster for its members…");
  const steps = h("ol", { class: "update-steps move-steps", "aria-live": "polite", "aria-label": `Steps of the move of ${name}` });
  const outcome = h("div", { class: "move-outcome" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": `Move ${name}`, novalidate: true },
    h("div", { class: "field" }, h("label", { for: "move-to" }, "To member"), select, h("p", { id: "move-to-help", class: "help" }, "the other active members")),
    h("div", { class: "field" }, h("label", { class: "check", for: "move-warm" }, warm, " Warm: copy while it runs, then only what changed")),
    h("div", { class: "field" }, h("label", { class: "check", for: "move-keep" }, keep, " Keep the data here for good")),
    h("div", { class: "field-submit row" }, dry, go, close),
  );
  replace(
    panel,
    h("h2", { id: headId, tabindex: "-1" }, `Move ${name}`),
    about,
    h("p", { class: "muted small" }, "The target checks the unit first (name, policy, ports, devices, disk, image); nothing stops unless every check passes. The data is copied over the cluster's mutual TLS and every file's SHA-256 is checked before the unit starts there; any failure leaves it running here."),
    form,
    steps,
    outcome,
  );

  async function loadMembers() {
    go.disabled = dry.disabled = true;
    try {
      const m = await api("GET", "/cluster/members", undefined, { signal });
      const others = (m.members || []).filter((x) => x.hostname !== m.self);
      const before = select.value;
      replace(select, ...others.map((x) => h("option", { value: x.hostname, selected: x.hostname === before }, `${x.hostname} (${x.addr})`)));
      about.textContent = others.length ? `${name} is on ${m.self}.` : "There is no other active member to move to.";
      go.disabled = dry.disabled = running || !others.length;
    } catch (e) {
      if (e.name === "AbortError") return;
      about.textContent = `Cannot list the members: ${e.message}`;
    }
  }

  function stepLine(map, p) {
    let li = map.get(p.step);
    if (!li) {
      li = h("li", { "data-step": p.step });
      map.set(p.step, li);
      steps.append(li);
    }
    li.dataset.state = p.state;
    const word = STEP_WORDS[p.step] || p.step;
    if (p.state === "progress") {
      const bar = p.progress && Number.isFinite(p.progress.total) && p.progress.total > 0
        ? h("progress", { max: String(p.progress.total), value: String(Math.min(p.progress.current || 0, p.progress.total)), "aria-label": `${word} progress` })
        : null;
      replace(li, h("span", { "aria-hidden": "true" }, "… "), h("span", { class: "step-name" }, word), p.detail, bar);
      return;
    }
    replace(li, h("span", { "aria-hidden": "true" }, `${MARK[p.state] || "…"} `), h("span", { class: "step-name" }, word), p.detail);
  }

  function showPlan(r) {
    const blocked = (r.blockers || []).length > 0;
    replace(
      outcome,
      h("div", { class: blocked ? "card-err move-plan" : "move-plan", "data-blockers": String((r.blockers || []).length), role: blocked ? "alert" : null },
        h("h3", {}, `Dry run: ${r.unit} from ${r.from} to ${r.to}`),
        h("ol", {}, ...(r.plan || []).map((s) => h("li", {}, s))),
        h("p", {}, `${MB(r.bytes)} in ${r.files} files (${(r.volumes || []).join(", ") || "no volumes"}); image: ${r.image || "unavailable"}; estimated ${Math.ceil(r.estimate_seconds || 0)} s.`),
        blocked
          ? [h("p", {}, h("strong", {}, `${r.blockers.length} blocker(s): nothing would be stopped.`)), h("ul", { class: "move-blockers" }, ...r.blockers.map((b) => h("li", {}, b)))]
          : h("p", { class: "job-ok" }, "No blockers."),
        h("p", { class: "muted small" }, "Nothing was changed.")),
    );
    announce(blocked ? `Dry run: ${r.blockers.length} blockers` : "Dry run: no blockers");
  }

  function showResult(r) {
    const msg = `Moved ${r.unit} from ${r.from} to ${r.to}: ${MB(r.bytes)} in ${r.files} files, downtime ${((r.downtime_ms || 0) / 1000).toFixed(1)} s${r.warm ? ` (${MB(r.sent_after_stop)} sent after the stop)` : ""}.`;
    replace(outcome, h("p", { class: "job-ok move-ok" }, h("span", { "aria-hidden": "true" }, "✓ "), msg));
    announce(msg);
  }

  function showFailure(f) {
    replace(
      outcome,
      h("div", { class: "card-err move-failed", role: "alert", "data-step": f.step || "" },
        h("h3", {}, "Not moved"),
        h("p", { class: "err-msg" }, f.message),
        f.hint ? h("ul", { class: "hint" }, ...f.hint.split("; ").filter(Boolean).map((x) => h("li", {}, x))) : null),
    );
    announce(`Not moved: ${f.message}`);
  }

  async function run(dryRun) {
    if (running || !select.value) return;
    running = true;
    go.disabled = dry.disabled = select.disabled = warm.disabled = keep.disabled = true;
    clear(steps);
    replace(outcome, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), dryRun ? `Checking a move of ${name} to ${select.value}…` : `Moving ${name} to ${select.value}…`));
    const map = new Map();
    let ended = false;
    ctl = new AbortController();
    const abort = () => ctl.abort();
    signal.addEventListener("abort", abort, { once: true });
    try {
      const body = { to: select.value, dry_run: dryRun, warm: warm.checked, keep_source: keep.checked };
      await readNdjson(unitPath(name, "/move"), (line) => {
        if (line.result) {
          ended = true;
          if (line.result.dry_run) showPlan(line.result);
          else showResult(line.result);
        } else if (line.error) {
          ended = true;
          showFailure(line.error);
        } else if (line.step) stepLine(map, line);
      }, ctl.signal, { method: "POST", body });
      if (!ended) replace(outcome, h("div", { class: "card-err", role: "alert" }, h("p", {}, "The connection ended before the move did: it goes on in containerctld. See the Cluster page's moves.")));
    } catch (e) {
      if (e.name === "AbortError") return;
      replace(outcome, h("div", { class: "card-err move-refused", role: "alert" }, h("h3", {}, "Not moved"), ...errorDetails(e)));
      if (e instanceof ApiError) announce(`Not moved: ${e.message}`);
    } finally {
      signal.removeEventListener("abort", abort);
      running = false;
      select.disabled = warm.disabled = keep.disabled = false;
      go.disabled = dry.disabled = !select.value;
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(false);
  });
  dry.addEventListener("click", () => run(true));
  disclosure(button, panel, close, loadMembers);

  return {
    button,
    panel,
    cleanup: () => {
      if (ctl) ctl.abort();
    },
  };
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "—";
}

/** The Cluster page's card of this host's moves: `{sec, load(signal)}`. */
export function movesCard() {
  const hid = newId("moves-h");
  const under = h("div", { class: "moves-running", "aria-live": "polite" });
  const history = h("div", { class: "moves-history" }, h("p", { class: "loading" }, "Loading the moves…"));
  const sec = h(
    "section",
    { class: "card", id: "cluster-moves", "aria-labelledby": hid },
    h("h2", { id: hid, tabindex: "-1" }, "Moves"),
    h("p", { class: "muted" }, "Units moved to or from this host, newest first. A move starts from a unit's page (Move…) or with ", h("code", {}, "containerctl move"), " and ", h("code", {}, "containerctl drain"), "."),
    under,
    history,
  );
  let last = "";
  async function load(signal) {
    let r;
    try {
      r = await api("GET", "/moves?limit=50", undefined, { signal });
    } catch (e) {
      if (e.name === "AbortError") return;
      replace(history, h("p", { class: "card-err" }, `Could not load the moves: ${e.message}`));
      return;
    }
    const key = JSON.stringify(r.moves);
    if (key === last) return;
    last = key;
    const running = r.moves.filter((m) => m.state === "running");
    const row = (m) => h(
      "tr",
      { "data-state": m.state, "data-unit": m.unit },
      h("td", {}, m.unit),
      h("td", {}, m.side === "source" ? `to ${m.peer}` : `from ${m.peer}`),
      h("td", {}, m.warm ? "warm" : "cold"),
      h("td", {}, when(m.started_ms)),
      h("td", {}, h("span", { class: `badge move-${m.state}` }, m.state), m.state === "running" && m.step ? ` (${m.step})` : ""),
      h("td", {}, m.downtime_ms != null ? `${(m.downtime_ms / 1000).toFixed(1)} s` : "—"),
      h("td", {}, m.actor),
      h("td", { class: "small" }, m.detail),
    );
    const table = (list, caption) => h(
      "table",
      { class: "table" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ...["Unit", "Where", "Kind", "Started", "State", "Downtime", "Who", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...list.map(row)),
    );
    replace(under, running.length ? [h("h3", {}, "Under way"), table(running, "Moves under way")] : null);
    replace(history, r.moves.length ? [h("h3", {}, "History"), table(r.moves.filter((m) => m.state !== "running"), "Moves that ended")] : h("p", { class: "muted" }, "No moves yet."));
  }
  return { sec, load };
}

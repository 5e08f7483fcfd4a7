// A unit's Update action: the versions its registry has (GET …/versions), then the update
// (POST …/update) followed step by step from its NDJSON stream to the outcome: updated, or
// "rolled back to VERSION: REASON" with the failed run's last log lines. The update runs in the
// daemon's own task: leaving the page stops the reading, not the update.

import { h, replace, clear, announce, newId, disclosure } from "./dom.js";
import { api, ApiError, readNdjson, unitPath } from "./api.js";

const MARK = { running: "…", done: "✓", skipped: "·", failed: "✗" };
const STEP_WORDS = {
  plan: "Plan",
  pull: "Pull",
  save: "Save",
  restart: "Restart",
  dependants: "Dependants",
  soak: "Watch",
  rollback: "Roll back",
  cleanup: "Clean up",
};

function shortDigest(d) {
  const m = /^([a-z0-9]+):([0-9a-f]{12})/.exec(d || "");
  return m ? `${m[1]}:${m[2]}` : d || "";
}

/**
 * The Update button and its panel for unit `name`. `errorDetails(e)` renders an API refusal;
 * `signal` ends the reading when the page goes. Returns {button, panel, cleanup}.
 */
export function updateAction(name, { signal, errorDetails }) {
  const panelId = newId("update-panel");
  const button = h("button", { type: "button", class: "btn", "data-action": "update", "aria-expanded": "false", "aria-controls": panelId }, "Update…");
  const headId = newId("update-h");
  const panel = h("section", { id: panelId, class: "card update-panel", "aria-labelledby": headId, hidden: true });
  let running = false;
  let ctl = null;

  const select = h("select", { id: "update-version", "aria-describedby": "update-version-help" });
  const soak = h("input", { id: "update-soak", type: "text", autocomplete: "off", spellcheck: "false", size: "8", placeholder: "default", "aria-describedby": "update-soak-help" });
  const go = h("button", { type: "submit", class: "btn btn-primary", id: "update-go" }, "Update");
  const close = h("button", { type: "button", class: "btn btn-ghost" }, "Close");
  const about = h("p", { class: "muted update-about" }, "Asking the registry for versions…");
  const formErr = h("p", { class: "form-error", role: "alert" });
  const steps = h("ol", { class: "update-steps", "aria-live": "polite", "aria-label": `Steps of the update of ${name}` });
  const outcome = h("div", { class: "update-outcome" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": `Update ${name}`, novalidate: true },
    h("div", { class: "field" }, h("label", { for: "update-version" }, "Version"), select, h("p", { id: "update-version-help", class: "help" }, "newest first")),
    h("div", { class: "field" }, h("label", { for: "update-soak" }, "Watch for"), soak, h("p", { id: "update-soak-help", class: "help" }, "e.g. 30s; default: the unit's soak")),
    h("div", { class: "field-submit row" }, go, close),
    formErr,
  );
  replace(
    panel,
    h("h2", { id: headId, tabindex: "-1" }, `Update ${name}`),
    about,
    h("p", { class: "muted small" }, "The new version is pulled while the old one runs, then the unit restarts with the units that require it and is watched; if it fails, becomes unhealthy or restarts, the previous version and digest come back."),
    form,
    steps,
    outcome,
  );

  async function loadVersions() {
    go.disabled = true;
    try {
      const v = await api("GET", unitPath(name, "/versions"), undefined, { signal });
      about.textContent = `${v.image} runs ${v.current}; update policy ${v.policy}; ${v.available ? `newest allowed: ${v.available}` : "no newer version the policy allows"}.`;
      // The version chosen before stays chosen; else the newest the policy allows, else the
      // newest that is not running and was not rolled back.
      const chosen = v.versions.some((x) => x.tag === select.value && x.tag !== v.current && !x.rolled_back) ? select.value : null;
      const pick = chosen || v.available || (v.versions.find((x) => x.tag !== v.current && !x.rolled_back) || {}).tag;
      replace(
        select,
        ...v.versions.map((x) => {
          const notes = [];
          if (x.tag === v.current) notes.push("running");
          if (x.allowed) notes.push("allowed by the policy");
          if (x.rolled_back) notes.push(`rolled back: ${x.rolled_back}`);
          return h("option", { value: x.tag, selected: x.tag === pick, disabled: x.tag === v.current, "data-rolled-back": x.rolled_back ? "true" : null }, notes.length ? `${x.tag} (${notes.join("; ")})` : x.tag);
        }),
      );
      go.disabled = running || !v.versions.some((x) => x.tag !== v.current);
      if (!v.versions.length) about.append(" The registry lists no version of the same shape.");
    } catch (e) {
      if (e.name === "AbortError") return;
      about.textContent = `Cannot list the versions: ${e.message}`;
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
    if (p.state === "progress") {
      const bar = p.progress && Number.isFinite(p.progress.total) && p.progress.total > 0
        ? h("progress", { max: String(p.progress.total), value: String(Math.min(p.progress.current || 0, p.progress.total)), "aria-label": `${STEP_WORDS[p.step] || p.step} progress` })
        : null;
      replace(li, h("span", { "aria-hidden": "true" }, "… "), h("span", { class: "step-name" }, STEP_WORDS[p.step] || p.step), p.detail, bar);
      return;
    }
    replace(li, h("span", { "aria-hidden": "true" }, `${MARK[p.state] || "…"} `), h("span", { class: "step-name" }, STEP_WORDS[p.step] || p.step), p.detail);
  }

  function showResult(r) {
    const digest = r.to_digest ? ` (${shortDigest(r.to_digest)})` : "";
    let msg;
    if (r.outcome === "unchanged") msg = `${name} runs ${r.to_version}${digest} already: nothing to do.`;
    else if (r.outcome === "saved") msg = `${name} will run ${r.to_version}${digest} at its next start (it is not running).`;
    else msg = `Updated ${name} from ${r.from_version} to ${r.to_version}${digest}${r.revision != null ? `, revision ${r.revision}` : ""}.`;
    replace(
      outcome,
      h("p", { class: "job-ok update-ok", "data-outcome": r.outcome }, h("span", { "aria-hidden": "true" }, "✓ "), msg),
      r.dependants && r.dependants.length ? h("p", { class: "muted" }, `Restarted with it: ${r.dependants.join(", ")}.`) : null,
    );
    announce(msg);
  }

  function showFailure(f) {
    const log = (f.detail && Array.isArray(f.detail.log) && f.detail.log) || [];
    const title = f.kind === "rolled_back" ? "Rolled back" : f.kind === "rollback_failed" ? "The rollback failed" : "The update failed";
    replace(
      outcome,
      h("div", { class: "card-err update-failed", role: "alert", "data-kind": f.kind },
        h("h3", {}, title),
        h("p", { class: "err-msg" }, f.message),
        f.hint ? h("p", { class: "hint" }, `hint: ${f.hint}`) : null,
        log.length ? [h("p", { class: "muted" }, "Last log lines of the failed run:"), h("pre", { class: "job-log", tabindex: "0" }, log.join("\n"))] : null),
    );
    announce(`${title}: ${f.message}`);
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (running || !select.value) return;
    formErr.textContent = "";
    running = true;
    go.disabled = true;
    select.disabled = true;
    soak.disabled = true;
    clear(steps);
    replace(outcome, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), `Updating ${name} to ${select.value}…`));
    announce(`Updating ${name} to ${select.value}`);
    const map = new Map();
    let ended = false;
    ctl = new AbortController();
    const abort = () => ctl.abort();
    signal.addEventListener("abort", abort, { once: true });
    try {
      const body = { to: select.value, soak: soak.value.trim() || null, dry_run: false };
      await readNdjson(unitPath(name, "/update"), (line) => {
        if (line.result) {
          ended = true;
          showResult(line.result);
        } else if (line.error) {
          ended = true;
          showFailure(line.error);
        } else if (line.step) stepLine(map, line);
      }, ctl.signal, { method: "POST", body });
      // A step the stream left running ended with the update: it no longer looks busy.
      for (const li of map.values()) {
        if (li.dataset.state === "running" || li.dataset.state === "progress") {
          li.dataset.state = "ended";
          li.firstChild.textContent = "· ";
        }
      }
      if (!ended) replace(outcome, h("div", { class: "card-err", role: "alert" }, h("p", {}, "The connection ended before the update did: it goes on in containerctld. See the unit's History tab and events.")));
    } catch (e) {
      if (e.name === "AbortError") return;
      // A refusal comes before anything starts (policy, an invalid file, a [deploy] unit).
      replace(outcome, h("div", { class: "card-err update-refused", role: "alert" }, h("h3", {}, "Not updated"), ...errorDetails(e)));
      if (e instanceof ApiError) announce(`Not updated: ${e.message}`);
    } finally {
      signal.removeEventListener("abort", abort);
      running = false;
      select.disabled = false;
      soak.disabled = false;
    }
    loadVersions();
  });

  disclosure(button, panel, close, loadVersions);

  return {
    button,
    panel,
    cleanup: () => {
      if (ctl) ctl.abort();
    },
  };
}

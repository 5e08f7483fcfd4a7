// How the page shows what the daemon said of a unit file: diagnostics (`FILE:LINE:COL`, the line
// quoted, the hint), policy refusals, job failures, warnings; and the live check of an editor's
// text (POST …/preview) that the Config tab and the New unit view share.

import { h, replace } from "./dom.js";
import { api, unitPath } from "./api.js";

/** `FILE:LINE:COL` of a diagnostic, or just the file when it is about the whole file. */
function diagLocation(g) {
  const file = g.file || "unit file";
  return g.line > 0 ? `${file}:${g.line}:${g.column}` : file;
}

/** Line `line` (1-based) of `text`, or null. */
function lineOf(text, line) {
  if (typeof text !== "string" || !(line > 0)) return null;
  const l = text.split("\n")[line - 1];
  return l === undefined ? null : l.replace(/\r$/, "");
}

/** A source line quoted and marked as the CLI quotes it: `N | line` and a caret under the column. */
export function quoteLine(line, column, source) {
  const n = String(line);
  const pad = " ".repeat(n.length);
  const caret = `${" ".repeat(Math.max(0, (column || 1) - 1))}^`;
  return h("pre", { class: "quote", tabindex: "0" }, `${pad} |\n${n} | ${source}\n${pad} | ${caret}`);
}

/** The quoted part of the daemon's rendering of a diagnostic (`rendered`): the lines after
 * `FILE:LINE:COL: message`, without the hint (shown on its own). */
function renderedQuote(rendered, g) {
  if (typeof rendered !== "string" || !rendered.startsWith(`${diagLocation(g)}: `)) return null;
  const body = rendered.split("\n").slice(1).filter((l) => !l.startsWith("  = hint: "));
  return body.length ? h("pre", { class: "quote", tabindex: "0" }, body.join("\n")) : null;
}

/** One diagnostic: `FILE:LINE:COL: message`, the line quoted (from the daemon's rendering, else
 * from `text`, the unit file that was checked) and the hint. `loc` replaces the location's element. */
export function diagnosticItem(g, { rendered, text, loc } = {}) {
  const quote = renderedQuote(rendered, g) || (lineOf(text, g.line) !== null ? quoteLine(g.line, g.column, lineOf(text, g.line)) : null);
  return h(
    "li",
    { class: "diag", "data-line": g.line },
    loc || h("code", { class: "diag-loc" }, diagLocation(g)),
    ": ",
    h("span", { class: "diag-msg" }, g.message),
    quote,
    g.hint ? h("span", { class: "hint" }, `hint: ${g.hint}`) : null,
  );
}

/** One policy refusal: the rule, where (`FILE:LINE:COL` and the key), the line quoted and the fix. */
export function violationItem(v, text, { prefix = null } = {}) {
  const parts = [prefix, h("code", {}, v.rule), ": ", v.message];
  if (v.location || v.key) {
    parts.push(h("span", { class: "viol-at" }, " at ", h("code", { class: "diag-loc" }, v.location || v.key), v.location && v.key ? ` (${v.key})` : ""));
  }
  const m = v.location && /:(\d+):(\d+)$/.exec(v.location);
  const source = m ? (typeof v.source_line === "string" ? v.source_line : lineOf(text, Number(m[1]))) : null;
  if (source !== null) parts.push(quoteLine(Number(m[1]), Number(m[2]), source));
  if (v.fix) parts.push(h("span", { class: "hint" }, `To allow it, an admin can ${v.fix}.`));
  return h("li", { class: "violation" }, ...parts);
}

/** An error of the API as readable elements: message, policy violations (where, the line quoted,
 * the fix), diagnostics (`FILE:LINE:COL`, the line quoted), job details. `text` is the unit file
 * that was sent, for quoting when the answer does not. */
export function errorDetails(e, text) {
  const parts = [h("p", { class: "err-msg" }, e.message)];
  const d = e.detail || {};
  if (Array.isArray(d.violations) && d.violations.length) {
    parts.push(h("ul", { class: "violations" }, ...d.violations.map((v) => violationItem(v, text))));
  }
  if (Array.isArray(d.diagnostics) && d.diagnostics.length) {
    const rendered = Array.isArray(d.rendered) && d.rendered.length === d.diagnostics.length ? d.rendered : [];
    parts.push(h("ul", { class: "diags" }, ...d.diagnostics.map((g, i) => diagnosticItem(g, { rendered: rendered[i], text }))));
  }
  if (e.kind === "job_failed") {
    const facts = h("dl", { class: "facts facts-compact" });
    if (d.result) facts.append(h("dt", {}, "Result"), h("dd", {}, h("code", {}, d.result)));
    if (d.status_text) facts.append(h("dt", {}, "Status"), h("dd", {}, d.status_text));
    parts.push(facts);
    if (Array.isArray(d.log) && d.log.length) {
      parts.push(h("p", { class: "muted" }, "Last log lines:"), h("pre", { class: "job-log", tabindex: "0" }, d.log.join("\n")));
    }
  }
  return parts;
}


/** The warnings of a save (`Applied.warnings`), each rendered like a diagnostic; null if none. */
export function warningsNote(warnings, what = "Saved") {
  if (!Array.isArray(warnings) || !warnings.length) return null;
  return h(
    "div",
    { class: "note apply-warned", role: "status" },
    h("p", {}, `${what}, with ${warnings.length === 1 ? "a warning" : `${warnings.length} warnings`}:`),
    h("ul", { class: "apply-warnings" }, ...warnings.map((w) => h("li", {}, h("pre", { class: "quote" }, w)))),
  );
}

/**
 * Checks the text of `ed` (editor.js) as unit NAME with the daemon while it is typed: marks the
 * lines with errors, lists the diagnostics (each location a button to its line) and the policy's
 * refusals. `name()` is the unit's name, or null when there is none to check against yet (then
 * `noName` is said); `path()` the file's path for the locations; `onResult(r, text)` is called
 * with each answer; `reveal()` shows the editor before a location moves the caret there.
 * Returns {summary, list, violations, say, schedule, run, showInvalid, stop, last}.
 */
export function createChecker({ ed, signal, name, path, noName = "", onResult, onState, reveal }) {
  const summary = h("p", { id: "diag-summary", class: "diag-summary", "aria-live": "polite" });
  const list = h("ul", { id: "diagnostics", class: "diagnostics" });
  const violations = h("ul", { class: "violations" });
  let seq = 0;
  let last = null; // {text, r}
  let timer = null;
  let ctl = null;
  const changed = () => onState && onState();

  function say(text, cls = "") {
    summary.textContent = text;
    summary.className = `diag-summary ${cls}`.trim();
  }

  function schedule() {
    clearTimeout(timer);
    say("Checking…");
    changed();
    timer = setTimeout(run, 600);
  }

  async function run() {
    clearTimeout(timer);
    const text = ed.text;
    const unit = name();
    const my = ++seq;
    if (ctl) ctl.abort();
    if (!unit) {
      last = null;
      say(noName, "muted");
      changed();
      return;
    }
    ctl = new AbortController();
    const abort = () => ctl.abort();
    signal.addEventListener("abort", abort, { once: true });
    say("Checking…");
    try {
      const r = await api("POST", unitPath(unit, "/preview"), { text }, { signal: ctl.signal });
      if (my !== seq) return;
      last = { text, unit, r };
      show(r, text);
      if (onResult) onResult(r, text);
    } catch (e) {
      if (e.name === "AbortError" || my !== seq) return;
      last = null;
      say(`Could not check the text: ${e.message}`);
    } finally {
      signal.removeEventListener("abort", abort);
      changed();
    }
  }

  /** A diagnostic of `text` (the text checked): its location is a button to that line. */
  function item(d, text, rendered) {
    const file = d.file || path();
    const loc = d.line > 0
      ? h("span", { class: "diag-loc" }, `${file}:`, h("button", { type: "button", class: "link diag-loc", "data-line": d.line, onclick: () => {
            if (reveal) reveal();
            ed.goTo(d.line, d.column);
          }, "aria-label": `Go to line ${d.line}, column ${d.column}` }, `${d.line}:${d.column}`))
      : h("span", { class: "diag-loc" }, file);
    return diagnosticItem(d, { text, rendered, loc });
  }

  function show(r, text) {
    const diags = r.diagnostics || [];
    const viol = r.violations || [];
    ed.mark(diags.map((d) => ({ line: d.line, kind: "error" })));
    replace(list, ...diags.map((d) => item(d, text)));
    replace(violations, ...viol.map((v) => violationItem(v, text, { prefix: h("strong", {}, "Policy: ") })));
    const where = diags.filter((d) => d.line > 0).map((d) => `line ${d.line}`);
    if (diags.length) say(`${diags.length} error${diags.length === 1 ? "" : "s"}${where.length ? ` (${[...new Set(where)].join(", ")})` : ""}.`, "bad");
    else if (viol.length) say(`Valid, but the policy refuses it (${viol.length} rule${viol.length === 1 ? "" : "s"}).`, "bad");
    else say(r.changed ? "Valid." : "Valid, no changes.", "good");
  }

  return {
    summary,
    list,
    violations,
    say,
    schedule,
    run,
    /** The diagnostics of a refused save (422 `invalid`) of `text`, marked and listed. */
    showInvalid(e, text) {
      if (e.kind !== "invalid" || !Array.isArray(e.detail.diagnostics)) return;
      const rendered = Array.isArray(e.detail.rendered) ? e.detail.rendered : [];
      ed.mark(e.detail.diagnostics.map((d) => ({ line: d.line, kind: "error" })));
      replace(list, ...e.detail.diagnostics.map((d, i) => item(d, text, rendered[i])));
    },
    /** The last answer, when it is for the editor's current text and name. */
    get last() {
      return last && last.text === ed.text && last.unit === name() ? last : null;
    },
    stop() {
      clearTimeout(timer);
      if (ctl) ctl.abort();
    },
  };
}

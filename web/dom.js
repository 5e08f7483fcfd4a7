// DOM helpers. Every piece of data reaches the page through text nodes or attributes set with
// the DOM API: nothing here parses HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" || k === "checked" || k === "disabled" || k === "selected") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** h("button", {class: "btn", onclick}, "Text", child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/**
 * Gives a table explicit ARIA roles: on narrow screens CSS shows rows as cards (display: block),
 * which would otherwise drop the table semantics in some browsers.
 */
export function tableRoles(table) {
  table.setAttribute("role", "table");
  for (const g of table.querySelectorAll("thead, tbody")) g.setAttribute("role", "rowgroup");
  for (const r of table.querySelectorAll("tr")) r.setAttribute("role", "row");
  for (const c of table.querySelectorAll("th")) c.setAttribute("role", "columnheader");
  for (const c of table.querySelectorAll("td")) c.setAttribute("role", "cell");
  return table;
}

let uid = 0;
export function newId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// ---------- formatting ----------

export function fmtDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const sec = Math.floor(ms / 1000);
  const d = Math.floor(sec / 86400);
  const hr = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const ss = sec % 60;
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${m}m`;
  if (m > 0) return `${m}m ${ss}s`;
  return `${ss}s`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function fmtPercent(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return "—";
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)} %`;
}

export function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString()
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "just now", "12 s ago", "3 min ago", "2 h ago", "4 d ago"; "in 14 min" for a time ahead. */
export function fmtRelative(ms, now = Date.now()) {
  if (!ms || !Number.isFinite(ms)) return "never";
  const d = now - ms;
  const a = Math.abs(d);
  if (a < 5000) return d >= 0 ? "just now" : "in a few seconds";
  let t;
  if (a < 60000) t = `${Math.floor(a / 1000)} s`;
  else if (a < 3600000) t = `${Math.floor(a / 60000)} min`;
  else if (a < 86400000) t = `${Math.floor(a / 3600000)} h`;
  else t = `${Math.floor(a / 86400000)} d`;
  return d >= 0 ? `${t} ago` : `in ${t}`;
}

export function isoTime(ms) {
  try {
    return new Date(ms).toISOString();
  } catch {
    return "";
  }
}

/** A <time> element that shows a local time and carries the ISO value. */
export function timeEl(ms) {
  return h("time", { datetime: isoTime(ms), title: isoTime(ms) }, fmtTime(ms));
}

/** A small padlock drawn inline (no icon font, no emoji font needed). */
export function lockIcon() {
  return s(
    "svg",
    { class: "icon", viewBox: "0 0 16 16", width: 14, height: 14, "aria-hidden": "true", focusable: "false" },
    s("rect", { x: 3, y: 7, width: 10, height: 8, rx: 1.5, fill: "currentColor" }),
    s("path", { d: "M5.2 7V5a2.8 2.8 0 0 1 5.6 0v2", fill: "none", stroke: "currentColor", "stroke-width": 1.8 }),
  );
}

// ---------- sparkline ----------

/**
 * An inline SVG line chart of points [{t, v}] (v null = no value: a gap) over the time window
 * [now - windowMs, now], scaled to [0, max or the largest value]. `label` is the accessible name:
 * the chart is one image to assistive technology.
 */
export function sparkline(points, { now = Date.now(), windowMs = 300000, max, label, className = "spark" } = {}) {
  const W = 120;
  const H = 28;
  const from = now - windowMs;
  const inWin = points.filter((p) => p.t >= from - 60000);
  const nums = inWin.filter((p) => Number.isFinite(p.v)).map((p) => p.v);
  const top = Math.max(max ?? 0, Math.max(...nums, 0) * 1.2, 1e-9); // headroom: a flat line is not "100 %"
  const x = (t) => Math.max(0, Math.min(W, ((t - from) / windowMs) * W));
  const y = (v) => H - 2 - (v / top) * (H - 4);
  const svg = s("svg", {
    class: className,
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": label || "chart",
    focusable: "false",
  });
  svg.append(s("line", { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: "spark-base" }));
  let d = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (run.length === 0) return;
    // A single sample is drawn as a short flat segment ending at its time.
    if (run.length === 1) run = [{ t: run[0].t - windowMs / 60, v: run[0].v }, run[0]];
    const seg = run.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(2)},${y(p.v).toFixed(2)}`).join("");
    d += seg;
    area += `${seg}L${x(run[run.length - 1].t).toFixed(2)},${H}L${x(run[0].t).toFixed(2)},${H}Z`;
    run = [];
  };
  for (const p of inWin) Number.isFinite(p.v) ? run.push(p) : flush();
  // The last value holds until now (the stream sends only when something changes).
  if (run.length) run.push({ t: now, v: run[run.length - 1].v });
  flush();
  if (d) svg.append(s("path", { d: area, class: "spark-area" }), s("path", { d, class: "spark-line" }));
  // The latest value as a dot (a zero-length round-capped stroke stays round when stretched).
  const lastPt = [...inWin].reverse().find((p) => Number.isFinite(p.v));
  if (lastPt && inWin[inWin.length - 1] === lastPt) {
    svg.append(s("path", { d: `M${x(now).toFixed(2)},${y(lastPt.v).toFixed(2)}h0`, class: "spark-dot" }));
  }
  return svg;
}

// ---------- diff ----------

/** Renders a unified diff text as a list of lines marked added/removed/hunk. */
export function diffView(text, { label = "Changes" } = {}) {
  const box = h("div", { class: "diff", role: "region", "aria-label": label, tabindex: "0" });
  if (!text) {
    box.append(h("p", { class: "muted" }, "No changes."));
    return box;
  }
  const pre = h("pre", {});
  for (const line of text.replace(/\n$/, "").split("\n")) {
    let cls = "ctx";
    let sr = "";
    if (line.startsWith("+++") || line.startsWith("---")) cls = "file";
    else if (line.startsWith("@@")) cls = "hunk";
    else if (line.startsWith("+")) {
      cls = "add";
      sr = "added: ";
    } else if (line.startsWith("-")) {
      cls = "del";
      sr = "removed: ";
    }
    const span = h("span", { class: `dl dl-${cls}` });
    if (sr) span.append(h("span", { class: "visually-hidden" }, sr));
    span.append(line || " ");
    pre.append(span, "\n");
  }
  box.append(pre);
  return box;
}

/** A small line diff (LCS) for texts of a few hundred lines, as unified-diff-like text. */
export function lineDiff(a, b, context = 3) {
  const A = (a || "").split("\n");
  const B = (b || "").split("\n");
  if (A.length * B.length > 4_000_000) return null;
  const n = A.length;
  const m = B.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) L[i][j] = A[i] === B[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && A[i] === B[j]) {
      ops.push([" ", A[i]]);
      i++;
      j++;
    } else if (j < m && (i >= n || L[i][j + 1] > L[i + 1][j])) ops.push(["+", B[j++]]);
    else ops.push(["-", A[i++]]);
  }
  if (!ops.some(([t]) => t !== " ")) return "";
  const keep = ops.map(() => false);
  ops.forEach(([t], k) => {
    if (t !== " ") for (let c = Math.max(0, k - context); c <= Math.min(ops.length - 1, k + context); c++) keep[c] = true;
  });
  const out = [];
  let prevKept = true;
  ops.forEach(([t, line], k) => {
    if (!keep[k]) {
      prevKept = false;
      return;
    }
    if (!prevKept || k === 0) out.push("@@");
    prevKept = true;
    out.push(t + line);
  });
  return out.join("\n");
}

// ---------- announcements ----------

let announceTimer = null;
/** Says `text` through the polite live region (#status). */
export function announce(text) {
  const region = document.getElementById("status");
  if (!region) return;
  region.textContent = "";
  clearTimeout(announceTimer);
  // A fresh text node after a tick makes screen readers repeat an identical message too.
  announceTimer = setTimeout(() => {
    region.textContent = text;
  }, 60);
}

/**
 * A button that opens and closes a panel (a unit's Update and Move panels): `aria-expanded`
 * follows the panel, opening calls `onOpen` and moves focus to the panel's heading, closing
 * (the button again, or `close`) gives focus back to the button.
 */
export function disclosure(button, panel, close, onOpen) {
  function toggle(open) {
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      onOpen();
      panel.querySelector("h2").focus();
    } else button.focus();
  }
  close.addEventListener("click", () => toggle(false));
  button.addEventListener("click", () => toggle(panel.hidden));
}

// Just enough TOML for the unit form: find `image`, `version`, `args`, `env`, `devices`, `secrets` and
// `env_secrets` in the [container] table of a unit file (with their byte spans), and write new
// values back in place, keeping every other line, comment and the layout as they are. The daemon
// validates the result (POST …/preview); this module never decides what is valid.

export const FORM_KEYS = ["image", "version", "args", "env", "devices", "secrets", "env_secrets"];

class TomlSyntax extends Error {
  constructor(message, text, pos) {
    const line = text.slice(0, pos).split("\n").length;
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

function isWs(c) {
  return c === " " || c === "\t";
}

function skipWs(t, i) {
  while (i < t.length && isWs(t[i])) i++;
  return i;
}

/** Skips spaces, newlines and comments (inside arrays). */
function skipWsNl(t, i) {
  for (;;) {
    while (i < t.length && (isWs(t[i]) || t[i] === "\n" || t[i] === "\r")) i++;
    if (t[i] === "#") {
      while (i < t.length && t[i] !== "\n") i++;
    } else return i;
  }
}

const ESC = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\", e: "\x1b" };

function parseString(t, i) {
  if (t.startsWith('"""', i) || t.startsWith("'''", i)) {
    const q = t.slice(i, i + 3);
    let j = i + 3;
    if (t[j] === "\n") j++;
    else if (t[j] === "\r" && t[j + 1] === "\n") j += 2;
    let out = "";
    while (j < t.length) {
      if (t.startsWith(q, j) && !t.startsWith(q + q[0] + q[0] + q[0], j)) {
        let k = j + 3;
        while (t[k] === q[0] && k - j < 5) k++; // up to two quotes may end the string
        out += q[0].repeat(k - j - 3);
        return { value: out, end: k };
      }
      if (q === '"""' && t[j] === "\\") {
        const n = t[j + 1];
        if (n === "\n" || n === "\r" || isWs(n)) {
          j = skipWsNl(t, j + 1);
          continue;
        }
        const r = escape(t, j);
        out += r.s;
        j = r.end;
        continue;
      }
      out += t[j++];
    }
    throw new TomlSyntax("unterminated multi-line string", t, i);
  }
  const q = t[i];
  let j = i + 1;
  let out = "";
  while (j < t.length && t[j] !== "\n") {
    if (t[j] === q) return { value: out, end: j + 1 };
    if (q === '"' && t[j] === "\\") {
      const r = escape(t, j);
      out += r.s;
      j = r.end;
      continue;
    }
    out += t[j++];
  }
  throw new TomlSyntax("unterminated string", t, i);
}

function escape(t, j) {
  const n = t[j + 1];
  if (n in ESC) return { s: ESC[n], end: j + 2 };
  if (n === "u" || n === "U") {
    const len = n === "u" ? 4 : 8;
    const hex = t.slice(j + 2, j + 2 + len);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) throw new TomlSyntax("bad escape", t, j);
    return { s: String.fromCodePoint(parseInt(hex, 16)), end: j + 2 + len };
  }
  if (n === "x") {
    const hex = t.slice(j + 2, j + 4);
    return { s: String.fromCodePoint(parseInt(hex, 16)), end: j + 4 };
  }
  throw new TomlSyntax("bad escape", t, j);
}

function parseKey(t, i) {
  const parts = [];
  for (;;) {
    i = skipWs(t, i);
    if (t[i] === '"' || t[i] === "'") {
      const r = parseString(t, i);
      parts.push(r.value);
      i = r.end;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(t.slice(i, i + 200));
      if (!m) throw new TomlSyntax("expected a key", t, i);
      parts.push(m[0]);
      i += m[0].length;
    }
    i = skipWs(t, i);
    if (t[i] === ".") i++;
    else return { parts, end: i };
  }
}

function parseValue(t, i) {
  const c = t[i];
  if (c === '"' || c === "'") return parseString(t, i);
  if (c === "[") {
    const value = [];
    let j = skipWsNl(t, i + 1);
    while (t[j] !== "]") {
      if (j >= t.length) throw new TomlSyntax("unterminated array", t, i);
      const r = parseValue(t, j);
      value.push(r.value);
      j = skipWsNl(t, r.end);
      if (t[j] === ",") j = skipWsNl(t, j + 1);
      else if (t[j] !== "]") throw new TomlSyntax("expected , or ] in an array", t, j);
    }
    return { value, end: j + 1 };
  }
  if (c === "{") {
    const value = {};
    let j = skipWs(t, i + 1);
    while (t[j] !== "}") {
      const k = parseKey(t, j);
      j = skipWs(t, k.end);
      if (t[j] !== "=") throw new TomlSyntax("expected = in an inline table", t, j);
      const r = parseValue(t, skipWs(t, j + 1));
      let obj = value;
      for (const p of k.parts.slice(0, -1)) obj = obj[p] = obj[p] && typeof obj[p] === "object" ? obj[p] : {};
      obj[k.parts[k.parts.length - 1]] = r.value;
      j = skipWs(t, r.end);
      if (t[j] === ",") j = skipWs(t, j + 1);
      else if (t[j] !== "}") throw new TomlSyntax("expected , or } in an inline table", t, j);
    }
    return { value, end: j + 1 };
  }
  // number, boolean, date: a bare token
  const m = /^[^\s,\]}#]+/.exec(t.slice(i, i + 200));
  if (!m) throw new TomlSyntax("expected a value", t, i);
  const raw = m[0];
  let value = raw;
  if (raw === "true") value = true;
  else if (raw === "false") value = false;
  else if (/^[+-]?\d[\d_]*(\.\d+)?([eE][+-]?\d+)?$/.test(raw)) value = Number(raw.replace(/_/g, ""));
  return { value, end: i + raw.length };
}

function endOfLine(t, i) {
  i = skipWs(t, i);
  if (t[i] === "#") while (i < t.length && t[i] !== "\n") i++;
  if (i < t.length && t[i] !== "\n" && t[i] !== "\r") throw new TomlSyntax("unexpected text after a value", t, i);
  return i;
}

/**
 * Reads a unit file. Returns {keys: {KEY: {value, start, end}}, containerHeader: {start, end} | null,
 * lastLineEnd: offset after the last key line of [container], unsupported: [KEY]}.
 * Throws an Error with a line number when the text is not TOML this reader understands.
 */
export function readUnit(text) {
  const t = text;
  const out = { keys: {}, containerHeader: null, lastLineEnd: null, unsupported: [] };
  let table = [];
  let i = 0;
  while (i < t.length) {
    i = skipWs(t, i);
    const c = t[i];
    if (c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < t.length && t[i] !== "\n") i++;
      continue;
    }
    if (c === "[") {
      const start = i;
      const arr = t[i + 1] === "[";
      const k = parseKey(t, i + (arr ? 2 : 1));
      let j = k.end;
      if (t[j] !== "]" || (arr && t[j + 1] !== "]")) throw new TomlSyntax("bad table header", t, start);
      j += arr ? 2 : 1;
      j = endOfLine(t, j);
      table = arr ? ["[[]]", ...k.parts] : k.parts;
      if (!arr && k.parts.length === 1 && k.parts[0] === "container") {
        out.containerHeader = { start, end: j };
        out.lastLineEnd = j;
      }
      if (!arr && k.parts[0] === "container" && k.parts.length === 2 && FORM_KEYS.includes(k.parts[1]))
        out.unsupported.push(k.parts[1]);
      i = j;
      continue;
    }
    const k = parseKey(t, i);
    let j = k.end;
    if (t[j] !== "=") throw new TomlSyntax("expected =", t, j);
    j = skipWs(t, j + 1);
    const vStart = j;
    const r = parseValue(t, j);
    const full = [...table, ...k.parts];
    if (full[0] === "container" && full.length === 2 && FORM_KEYS.includes(full[1])) {
      if (table.length === 1) out.keys[full[1]] = { value: r.value, start: vStart, end: r.end };
      else out.unsupported.push(full[1]);
    } else if (full[0] === "container" && full.length > 2 && FORM_KEYS.includes(full[1])) {
      out.unsupported.push(full[1]);
    }
    i = endOfLine(t, r.end);
    if (table.length === 1 && table[0] === "container") out.lastLineEnd = i;
  }
  return out;
}

// ---------- writing ----------

export function tomlString(s) {
  let out = '"';
  for (const ch of String(s)) {
    const code = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

export function tomlKey(k) {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

export function tomlValue(v) {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v);
    return entries.length ? `{ ${entries.map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`).join(", ")} }` : "{}";
  }
  if (typeof v === "boolean" || typeof v === "number") return String(v);
  return tomlString(v);
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isEmpty(v) {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

/**
 * Returns `text` with the [container] keys of `values` (those of FORM_KEYS) set, in
 * place where they exist, else appended to the [container] table (created when missing). Keys
 * whose value did not change keep their original spelling. Empty new values for missing keys are
 * not added.
 */
export function writeUnit(text, values) {
  const doc = readUnit(text);
  const edits = []; // [start, end, replacement]
  const inserts = [];
  for (const key of FORM_KEYS) {
    if (!(key in values)) continue;
    const v = values[key];
    const cur = doc.keys[key];
    if (cur) {
      if (!same(cur.value, v)) edits.push([cur.start, cur.end, tomlValue(v)]);
    } else if (!isEmpty(v)) {
      inserts.push(`${key} = ${tomlValue(v)}`);
    }
  }
  if (inserts.length) {
    const block = inserts.join("\n");
    if (doc.lastLineEnd !== null) {
      edits.push([doc.lastLineEnd, doc.lastLineEnd, `\n${block}`]);
    } else {
      const sep = text.length === 0 || text.endsWith("\n\n") ? "" : text.endsWith("\n") ? "\n" : "\n\n";
      edits.push([text.length, text.length, `${sep}[container]\n${block}\n`]);
    }
  }
  edits.sort((a, b) => b[0] - a[0]);
  let out = text;
  for (const [s, e, r] of edits) out = out.slice(0, s) + r + out.slice(e);
  return out;
}

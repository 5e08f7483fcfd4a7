// The HTTP API of containerctld (docs/api.md): JSON requests with the session's CSRF token, the
// NDJSON log stream, and the live unit list from the server-sent event stream.

export const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** An error answer of the API: {error: {kind, message, ...}}. */
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.kind = err.kind || (status === 401 ? "unauthorized" : "http");
    this.detail = err;
  }
}

/** The daemon could not be reached at all. */
export class NetworkError extends Error {
  constructor(cause) {
    super("containerctld cannot be reached");
    this.kind = "network";
    this.cause = cause;
  }
}

/** The current session: filled from POST/GET /api/v1/session. The CSRF token lives only here. */
export const session = { role: null, name: null, csrf: null, expires_at_ms: null };

export function setSession(body) {
  session.role = body ? body.role : null;
  session.name = body ? body.name : null;
  session.csrf = body ? body.csrf : null;
  session.expires_at_ms = body ? body.expires_at_ms : null;
}

const RANK = { viewer: 1, operator: 2, admin: 3 };
export function can(role) {
  return (RANK[session.role] || 0) >= RANK[role];
}

const hooks = { unauthorized() {}, network() {}, reachable() {} };
export function setHooks(h) {
  Object.assign(hooks, h);
}

/**
 * One API call. `path` is below /api/v1. Rejects with ApiError or NetworkError (after calling the
 * matching hook); AbortError passes through untouched.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: opts.accept || "application/json" };
  // `opts.bytes`: send `body` as it is (a Blob, ArrayBuffer or string: a secret's value), not as JSON.
  if (body !== undefined) headers["Content-Type"] = opts.bytes ? "application/octet-stream" : "application/json";
  if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : opts.bytes ? body : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: opts.signal,
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    if (!opts.quiet) hooks.network(e);
    throw new NetworkError(e);
  }
  hooks.reachable();
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      /* not JSON */
    }
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !opts.allow401) hooks.unauthorized(err);
    throw err;
  }
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const unitPath = (name, rest = "") => `/units/${encodeURIComponent(name)}${rest}`;

/**
 * Reads an NDJSON response incrementally; calls onItem for each parsed line. Resolves when the
 * stream ends; rejects on network errors (not on a malformed line, which is skipped). `method`
 * and `body` for a long operation (POST …/update) that streams its steps.
 */
export async function readNdjson(path, onItem, signal, { method = "GET", body } = {}) {
  const res = await api(method, path, body, { raw: true, signal, accept: "application/x-ndjson" });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const emit = (line) => {
    const t = line.trim();
    if (!t) return;
    try {
      onItem(JSON.parse(t));
    } catch {
      /* skip a malformed line */
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      emit(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  buf += decoder.decode();
  emit(buf);
}

// ---------- live units (GET /api/v1/stream) ----------

const WINDOW_MS = 5 * 60 * 1000;
const MAX_SAMPLES = 400;

/** The live unit list with a short history of CPU and memory samples per unit. */
export const live = {
  units: new Map(),
  samples: new Map(), // name -> [{t, cpu, mem}]
  received: false, // a first `units` event arrived
  state: "idle", // idle | connecting | open | retrying
  windowMs: WINDOW_MS,
};

const listeners = new Set();
const stateListeners = new Set();
const clusterListeners = new Set();

/** fn(changes) with changes: [{name, before: Unit|undefined, after: Unit|undefined}] */
export function onUnits(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
/** fn(data) on a `cluster` event of the stream (the cluster changed), when the daemon sends one. */
export function onCluster(fn) {
  clusterListeners.add(fn);
  return () => clusterListeners.delete(fn);
}
export function onStreamState(fn) {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}
function setState(state) {
  live.state = state;
  for (const fn of stateListeners) fn(state);
}

function record(u, t) {
  let list = live.samples.get(u.name);
  if (!list) live.samples.set(u.name, (list = []));
  const running = u.active_state === "active" || u.active_state === "reloading";
  list.push({
    t,
    cpu: running && Number.isFinite(u.cpu_percent) ? u.cpu_percent : null,
    mem: running && Number.isFinite(u.memory_bytes) ? u.memory_bytes : null,
  });
  while (list.length > MAX_SAMPLES || (list.length > 2 && list[0].t < t - WINDOW_MS)) list.shift();
}

/** Replaces the whole list (a `units` event or GET /units). */
export function applyUnits(array) {
  const t = Date.now();
  const seen = new Set();
  const changes = [];
  for (const u of array) {
    seen.add(u.name);
    const before = live.units.get(u.name);
    live.units.set(u.name, u);
    record(u, t);
    changes.push({ name: u.name, before, after: u });
  }
  for (const [name, before] of [...live.units]) {
    if (!seen.has(name)) {
      live.units.delete(name);
      live.samples.delete(name);
      changes.push({ name, before, after: undefined });
    }
  }
  live.received = true;
  for (const fn of listeners) fn(changes);
}

/** Merges one unit (e.g. the `state` of a finished job) without waiting for the stream. */
export function applyUnit(u) {
  const before = live.units.get(u.name);
  live.units.set(u.name, u);
  for (const fn of listeners) fn([{ name: u.name, before, after: u }]);
}

let source = null;
let retryTimer = null;
let retryDelay = 1000;
let streamHooks = { closed() {} };

export function startStream(h = {}) {
  streamHooks = { ...streamHooks, ...h };
  stopStream();
  setState("connecting");
  const es = new EventSource("/api/v1/stream");
  source = es;
  es.addEventListener("open", () => {
    retryDelay = 1000;
    setState("open");
  });
  es.addEventListener("units", (ev) => {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (Array.isArray(data)) applyUnits(data);
  });
  es.addEventListener("cluster", (ev) => {
    let data = null;
    try {
      data = JSON.parse(ev.data);
    } catch {
      /* a bare signal */
    }
    for (const fn of clusterListeners) fn(data);
  });
  es.addEventListener("error", () => {
    if (source !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The server refused (e.g. 401) or the connection broke for good: ask the caller whether
      // the session is still valid, then reconnect with a growing delay.
      source = null;
      setState("retrying");
      streamHooks.closed();
      retryTimer = setTimeout(() => startStream(), retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    } else {
      setState("retrying"); // the browser reconnects by itself
    }
  });
}

export function stopStream() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (source) source.close();
  source = null;
  setState("idle");
}

export function resetLive() {
  stopStream();
  live.units.clear();
  live.samples.clear();
  live.received = false;
}

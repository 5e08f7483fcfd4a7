// The cluster (issue 6, federation). #/cluster: whether this host is in a cluster, its nodes, the
// registry, the shared volume and the join tokens; #/cluster/nodes/ID: one node with its units and
// history. Both refresh when the live stream reports a change and every 10 seconds (last seen).

import { h, replace, clear, announce, fmtBytes, fmtRelative, isoTime, timeEl, tableRoles, newId } from "./dom.js";
import { api, ApiError, NetworkError, can, onUnits, onCluster, NAME_RE } from "./api.js";
import { stateBadge } from "./units.js";
import { movesCard } from "./moves.js";

const REFRESH_MS = 10000;

const nodePath = (id) => `/cluster/nodes/${encodeURIComponent(id)}`;
export const nodeHash = (id) => `#/cluster/nodes/${encodeURIComponent(id)}`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// ---------- small pieces ----------

/** A relative time ("3 min ago", "in 14 min") that tick() keeps current; the exact time as title. */
function ago(ms, never = "never") {
  if (!ms) return h("span", { class: "muted" }, never);
  return h("time", { class: "rel", datetime: isoTime(ms), title: new Date(ms).toLocaleString(), "data-ms": String(ms) }, fmtRelative(ms));
}

function tick(root) {
  const now = Date.now();
  for (const t of root.querySelectorAll("time.rel[data-ms]")) {
    const text = fmtRelative(Number(t.dataset.ms), now);
    if (t.textContent !== text) t.textContent = text;
  }
}

const NODE_STATE_TITLE = {
  up: "Reports to the managers",
  down: "The managers have not heard from it lately",
  left: "Left the cluster",
};

/** A node's state as a badge with the word (up green, down red, left grey). */
export function nodeStateBadge(state) {
  const s = state || "unknown";
  return h("span", { class: `badge state state-${s}`, "data-state": s, title: NODE_STATE_TITLE[s] || null }, h("span", { class: "dot", "aria-hidden": "true" }), s);
}

function tokenStateBadge(state) {
  const cls = state === "valid" ? "ok" : state === "revoked" ? "bad" : "tag-muted";
  return h("span", { class: `badge ${cls}`, "data-state": state }, state);
}

/** A bar of used/total with the figures as text (and as the meter's value for assistive technology). */
function usageBar(used, total, what) {
  if (!Number.isFinite(used) || !Number.isFinite(total) || total <= 0) return h("span", { class: "muted" }, "—");
  const pct = Math.max(0, Math.min(100, (used / total) * 100));
  const text = `${fmtBytes(used)} of ${fmtBytes(total)} used (${pct >= 10 || pct === 0 ? Math.round(pct) : pct.toFixed(1)} %)`;
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = `${pct.toFixed(1)}%`;
  return h(
    "div",
    { class: "usage" },
    h("div", {
      class: ["bar", pct >= 95 ? "bar-bad" : pct >= 80 ? "bar-warn" : ""],
      role: "meter",
      "aria-label": what,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": pct.toFixed(0),
      "aria-valuetext": text,
    }, fill),
    h("span", { class: "usage-text" }, text),
  );
}

function legacyCopy(text) {
  const ta = h("textarea", { class: "visually-hidden", readonly: true, "aria-hidden": "true", tabindex: "-1" });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** A "Copy" button for getText(); says whether it worked (visibly and to screen readers). */
function copyButton(getText, what) {
  const label = h("span", {}, "Copy");
  const btn = h("button", { type: "button", class: "btn btn-small copy-btn", "data-copy": what }, label, h("span", { class: "visually-hidden" }, ` ${what}`));
  let timer = null;
  btn.addEventListener("click", async () => {
    const text = getText();
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      ok = legacyCopy(text);
      btn.focus();
    }
    label.textContent = ok ? "Copied" : "Copy failed";
    announce(ok ? `Copied ${what}` : `Could not copy ${what}: select it and copy it by hand`);
    clearTimeout(timer);
    timer = setTimeout(() => (label.textContent = "Copy"), 2500);
  });
  return btn;
}

function command(text) {
  return h("div", { class: "cmd" }, h("code", {}, text), copyButton(() => text, "the command"));
}

/** Whether a form error is about the validity period (then that field gets the focus). */
const e400 = (err) => /ttl|valid|duration/i.test(err.textContent);

function errorBox(e, what, retry) {
  return h(
    "div",
    { class: "card-err", role: "alert" },
    h("p", {}, e instanceof NetworkError ? "containerctld cannot be reached." : `${what}: ${e.message}`),
    retry ? h("button", { type: "button", class: "btn btn-small", onclick: retry }, "Try again") : null,
  );
}

/**
 * Runs fn (which rebuilds part of root) and puts the focus back on the element with the same
 * data-key, so a refresh does not throw a keyboard user out of a table.
 */
function keepFocus(root, fn, fallback) {
  const a = document.activeElement;
  const key = a && a !== root && root.contains(a) && a.dataset ? a.dataset.key : null;
  fn();
  if (!key) return;
  const el = [...root.querySelectorAll("[data-key]")].find((x) => x.dataset.key === key);
  if (el && !el.disabled) el.focus();
  else if (fallback) fallback.focus();
}

function unitChanged(c) {
  const a = c.before;
  const b = c.after;
  if (!a || !b) return true;
  return a.active_state !== b.active_state || a.sub_state !== b.sub_state || a.version !== b.version || a.image !== b.image;
}

/**
 * Calls load() (which must not throw) now and then: when a unit of this host changes state, when
 * the stream sends a `cluster` event, every 10 seconds while the page is visible, and when it
 * becomes visible again. Never two loads at once.
 */
function liveLoader(load) {
  let running = false;
  let again = false;
  let soon = null;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await load();
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      }
    }
  };
  const schedule = (delay) => {
    if (soon) return;
    soon = setTimeout(() => {
      soon = null;
      run();
    }, delay);
  };
  const offUnits = onUnits((changes) => {
    if (changes.some(unitChanged)) schedule(1000);
  });
  const offCluster = onCluster(() => schedule(250));
  const timer = setInterval(() => {
    if (!document.hidden) run();
  }, REFRESH_MS);
  const onVisible = () => {
    if (!document.hidden) schedule(0);
  };
  document.addEventListener("visibilitychange", onVisible);
  return {
    run,
    stop() {
      stopped = true;
      offUnits();
      offCluster();
      clearInterval(timer);
      clearTimeout(soon);
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}

function unitsSummary(units) {
  const list = units || [];
  const failed = list.filter((u) => u.active_state === "failed").length;
  const active = list.filter((u) => u.active_state === "active").length;
  return { n: list.length, failed, active };
}

function sortUnits(units) {
  return [...(units || [])].sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

/** A unit name: a link to its page when the unit runs on this host (the unit pages are local). */
function unitName(name, self) {
  return self && NAME_RE.test(name) ? h("a", { href: `#/units/${encodeURIComponent(name)}`, class: "unit-link" }, name) : h("span", { class: "unit-name" }, name);
}

function resourceLines(r) {
  if (!r) return h("span", { class: "muted" }, "—");
  const lines = [];
  if (Number.isFinite(r.cpus)) lines.push(`${plural(r.cpus, "CPU")}${Number.isFinite(r.load1) ? ` · load ${r.load1.toFixed(2)}` : ""}`);
  if (Number.isFinite(r.memory_available_bytes)) lines.push(`${fmtBytes(r.memory_available_bytes)} of ${fmtBytes(r.memory_total_bytes)} memory free`);
  if (Number.isFinite(r.disk_avail_bytes)) lines.push(`${fmtBytes(r.disk_avail_bytes)} disk free`);
  if (!lines.length) return h("span", { class: "muted" }, "—");
  return lines.map((l) => h("span", { class: "res-line" }, l));
}

function swarmText(n) {
  const bits = [];
  if (n.availability) bits.push(h("span", { class: n.availability === "active" ? "" : "warn-text" }, n.availability));
  if (n.swarm_state) bits.push(h("span", { class: ["desc", n.swarm_state === "down" ? "bad" : ""] }, n.swarm_state));
  return bits.length ? bits : h("span", { class: "muted", title: "Not in the Docker Swarm" }, "—");
}

// ---------- #/cluster ----------

export function renderCluster(main, ctx) {
  ctx.setTitle("Cluster");
  const summary = h("p", { class: "summary" });
  const stale = h("div", { class: "stale", "aria-live": "polite" });
  const body = h("div", { class: "cluster" }, h("p", { class: "loading" }, "Loading the cluster…"));
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Cluster"), summary), stale, body);

  let built = null; // "member" | "none"
  let parts = null;
  let cluster = null;
  const last = { self: "", nodes: "", registry: "", shared: "", tokens: "" };
  const expanded = new Set(); // node ids whose units are shown
  let tokensDenied = null; // a 403/409 of GET /cluster/tokens: not asked again on this page

  // ----- not in a cluster -----

  function showNotMember() {
    if (built === "none") return;
    built = "none";
    parts = null;
    replace(summary, "This host is not in a cluster");
    const hid = newId("nm-h");
    replace(
      body,
      h(
        "section",
        { class: "card not-member", "aria-labelledby": hid, "data-member": "false" },
        h("h2", { id: hid }, "This host is not in a cluster"),
        h("p", {}, "A cluster lets several hosts share the work: managers keep the list of nodes and their units, a registry holds the images every node can pull, and a shared volume is mounted on every host."),
        h("p", {}, "To start a new cluster with this host as its first manager, run this on the host as root:"),
        command("containerctl cluster init"),
        h("p", {}, "To join an existing cluster instead, make a join token on one of its managers (on its Cluster page) and give it to ", h("code", {}, "containerctl cluster join"), " on this host, as root. See ", h("code", {}, "man containerctl"), "."),
        h("p", { class: "muted small" }, "This page cannot do either for you; it shows the cluster as soon as this host is in one."),
      ),
    );
  }

  // ----- in a cluster -----

  function buildMember(c) {
    // A worker has no join tokens to make: the form is built for a manager only.
    const kind = `member:${c.role}`;
    if (built === kind) return;
    built = kind;
    tokensDenied = null;
    for (const k of Object.keys(last)) last[k] = "";
    const card = (id, title, ...rest) => {
      const hid = `${id}-h`;
      const heading = h("h2", { id: hid, tabindex: "-1" }, title);
      const sec = h("section", { class: "card", id, "aria-labelledby": hid }, heading, ...rest);
      return { sec, heading };
    };
    const selfFacts = h("dl", { class: "facts" });
    const nodesBody = h("div", { class: "nodes-body" }, h("p", { class: "loading" }, "Loading the nodes…"));
    const registryBody = h("div", {}, h("p", { class: "loading" }, "Loading…"));
    const sharedBody = h("div", {}, h("p", { class: "loading" }, "Loading…"));
    const tokensBody = h("div", { class: "tokens-body" }, h("p", { class: "loading" }, "Loading the join tokens…"));
    const tokensMsg = h("div", { class: "tokens-msg", "aria-live": "polite" });
    const newToken = h("div", { class: "new-token" });
    const self = card("cluster-self", "This host", selfFacts);
    const nodes = card("cluster-nodes", "Nodes", nodesBody);
    const registry = card("cluster-registry", "Registry", registryBody);
    const shared = card("cluster-shared", "Shared volume", sharedBody);
    const tokens = card(
      "cluster-tokens",
      "Join tokens",
      h("p", { class: "muted" }, "A new host joins the cluster with a join token, given to ", h("code", {}, "containerctl cluster join"), " on that host (as root). A token works for a limited time and number of joins."),
      c.role !== "manager" ? null : can("admin") ? tokenForm() : h("p", { class: "perm-note no-create" }, "Only admins can make or revoke join tokens."),
      newToken,
      tokensMsg,
      tokensBody,
    );
    const moves = movesCard();
    parts = { selfFacts, nodesBody, registryBody, sharedBody, tokensBody, tokensMsg, newToken, tokensHeading: tokens.heading, nodesSec: nodes.sec, moves };
    replace(body, h("div", { class: "grid-3" }, self.sec, registry.sec, shared.sec), nodes.sec, moves.sec, tokens.sec);
  }

  function paintSelf(c) {
    const key = JSON.stringify([c.role, c.cluster_id, c.node_id, c.hostname, c.manager_addrs, c.swarm]);
    if (key === last.self) return;
    last.self = key;
    const sw = c.swarm;
    const rows = [
      ["Hostname", h("strong", {}, c.hostname || "—")],
      ["Role", h("span", { class: `badge tag node-role role-${c.role}` }, c.role || "?")],
      ["Node", h("code", {}, c.node_id || "—")],
      ["Cluster", h("code", {}, c.cluster_id || "—")],
      ["Managers", (c.manager_addrs || []).length ? h("ul", { class: "plain" }, ...(c.manager_addrs || []).map((a) => h("li", {}, h("code", {}, a)))) : h("span", { class: "muted" }, "—")],
      ["Docker Swarm", sw ? `${sw.state || "?"}${Number.isFinite(sw.managers) ? ` · ${plural(sw.managers, "manager")}` : ""}${Number.isFinite(sw.nodes) ? ` · ${plural(sw.nodes, "node")}` : ""}` : h("span", { class: "muted" }, "not in a swarm")],
    ];
    replace(parts.selfFacts, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function paintRegistry(r) {
    const key = JSON.stringify(r ?? null);
    if (key === last.registry) return;
    last.registry = key;
    if (!r) {
      replace(parts.registryBody, h("p", { class: "muted" }, "This cluster has no registry."));
      return;
    }
    const out = [
      h("dl", { class: "facts" }, h("dt", {}, "Address"), h("dd", { class: "registry-addr" }, h("code", {}, r.address || "—"))),
      h("h3", {}, "Images"),
    ];
    if (r.images === null || r.images === undefined) {
      out.push(h("p", { class: "muted" }, "The list of images is shown on a manager."));
    } else if (!r.images.length) {
      out.push(h("p", { class: "muted" }, "No images in the registry yet."));
    } else {
      const imgs = [...r.images].sort((a, b) => String(a.name).localeCompare(String(b.name)));
      out.push(
        h("ul", { class: "image-list" }, ...imgs.map((im) =>
          h("li", { "data-image": im.name },
            h("code", { class: "wrap" }, im.name),
            h("span", { class: "tags" }, ...((im.tags || []).length ? im.tags.map((t) => h("span", { class: "badge tag image-tag" }, t)) : [h("span", { class: "muted small" }, "no tags")])))),
        ),
      );
    }
    if (r.address) out.push(h("p", { class: "help" }, "Units refer to these images as ", h("code", {}, `${r.address}/NAME`), " with the tag as version."));
    replace(parts.registryBody, ...out);
  }

  function paintShared(s) {
    const key = JSON.stringify(s ?? null);
    if (key === last.shared) return;
    last.shared = key;
    if (!s) {
      replace(parts.sharedBody, h("p", { class: "muted" }, "This cluster has no shared volume."));
      return;
    }
    const mounted = Boolean(s.mounted);
    const facts = h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Mounted"),
      h("dd", { class: "shared-mounted", "data-mounted": String(mounted) }, mounted ? h("span", { class: "badge ok" }, "mounted") : h("span", { class: "badge bad" }, "not mounted")),
      h("dt", {}, "Path"),
      h("dd", {}, h("code", { class: "wrap" }, s.path || "—")),
      h("dt", {}, "Volume"),
      h("dd", {}, s.volume ? h("code", {}, s.volume) : "—"),
    );
    const out = [facts];
    if (mounted) {
      out.push(h("h3", {}, "Space"), usageBar(s.used_bytes, s.size_bytes, "Shared volume space"));
      if (Number.isFinite(s.avail_bytes)) out.push(h("p", { class: "help" }, `${fmtBytes(s.avail_bytes)} available.`));
    } else {
      out.push(h("p", { class: "card-err" }, "The shared volume is not mounted on this host: units with ", h("code", {}, "shared:"), " volumes cannot start here until it is."));
    }
    replace(parts.sharedBody, ...out);
  }

  function paintNodes(result) {
    const box = parts.nodesBody;
    if (result.status === "rejected") {
      const e = result.reason;
      last.nodes = "";
      if (e.name === "AbortError") return;
      if (e instanceof ApiError && e.status === 409) {
        const addrs = (cluster.manager_addrs || []).join(", ");
        replace(box, h("p", { class: "note" }, "This host is a worker: the list of nodes is kept by the managers", addrs ? [" (", h("code", {}, addrs), ")"] : null, ". Open the page of a manager to see every node."));
      } else replace(box, errorBox(e, "Could not load the nodes", run));
      box.dataset.state = "error";
      return;
    }
    const list = result.value || [];
    const rank = { down: 0, up: 1, left: 2 };
    list.sort((a, b) => (rank[a.state] ?? 1) - (rank[b.state] ?? 1) || String(a.hostname).localeCompare(String(b.hostname)));
    const up = list.filter((n) => n.state === "up").length;
    const down = list.filter((n) => n.state === "down").length;
    replace(
      summary,
      `${cluster.role === "manager" ? "Manager" : "Worker"} of ${cluster.cluster_id || "a cluster"} · ${plural(list.length, "node")}: ${up} up, `,
      h("span", { class: down ? "n-failed" : "" }, `${down} down`),
    );
    const key = JSON.stringify(list);
    box.dataset.state = "loaded";
    if (key === last.nodes) return;
    last.nodes = key;
    for (const id of [...expanded]) if (!list.some((n) => n.id === id)) expanded.delete(id);
    if (!list.length) {
      replace(box, h("p", { class: "empty" }, "No nodes yet."));
      return;
    }
    keepFocus(box, () => replace(box, nodesTable(list)), parts.nodesSec.querySelector("h2"));
  }

  function nodesTable(list) {
    const cols = ["Node", "Address", "Role", "State", "Swarm", "Last seen", "Units", "Resources"];
    const tbody = h("tbody", {});
    for (const n of list) {
      const isSelf = n.id === cluster.node_id;
      const moreId = `node-more-${n.id}`;
      const open = expanded.has(n.id);
      const us = unitsSummary(n.units);
      const toggle = h(
        "button",
        { type: "button", class: "btn btn-small btn-ghost expander", "aria-expanded": String(open), "aria-controls": moreId, "data-key": `units:${n.id}` },
        h("span", { class: "chev", "aria-hidden": "true" }),
        h("span", { class: "units-count", "data-count": String(us.n) }, plural(us.n, "unit")),
        h("span", { class: "visually-hidden" }, ` on ${n.hostname}`),
      );
      const more = h("tr", { class: "node-more", id: moreId, "data-node-units": n.id, hidden: !open }, h("td", { colspan: String(cols.length), "data-label": "" }, nodeUnitsList(n, isSelf)));
      toggle.addEventListener("click", () => {
        const now = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(now));
        more.hidden = !now;
        if (now) expanded.add(n.id);
        else expanded.delete(n.id);
      });
      tbody.append(
        h("tr", { "data-node": n.id, class: n.state === "down" ? "row-bad" : n.state === "left" ? "row-muted" : "" },
          h("td", { "data-label": "Node", class: "c-node" },
            h("a", { href: nodeHash(n.id), class: "node-link", "data-key": `link:${n.id}` }, n.hostname || n.id),
            isSelf ? h("span", { class: "badge tag", title: "The host this page is served from" }, "this host") : null,
            h("span", { class: "desc mono" }, n.id)),
          h("td", { "data-label": "Address" }, h("code", {}, n.addr || "—")),
          h("td", { "data-label": "Role" }, n.role || "—"),
          h("td", { "data-label": "State", class: "c-state" }, nodeStateBadge(n.state)),
          h("td", { "data-label": "Swarm" }, swarmText(n)),
          h("td", { "data-label": "Last seen", class: "c-seen" }, ago(n.last_seen_ms)),
          h("td", { "data-label": "Units", class: "c-units" }, toggle, us.failed ? h("span", { class: "badge tag tag-bad" }, `${us.failed} failed`) : null),
          h("td", { "data-label": "Resources", class: "c-res" }, resourceLines(n.resources))),
        more,
      );
    }
    return h("div", { class: "table-wrap" },
      tableRoles(h("table", { class: "list nodes" },
        h("caption", { class: "visually-hidden" }, "Nodes of the cluster, nodes that are down first"),
        h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", { scope: "col" }, c)))),
        tbody)));
  }

  // ----- join tokens -----

  function tokenForm() {
    const role = h("select", { id: "jt-role", name: "role" }, h("option", { value: "worker", selected: true }, "worker"), h("option", { value: "manager" }, "manager"));
    const ttl = h("input", { id: "jt-ttl", name: "ttl", type: "text", value: "15m", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", size: "8", "aria-describedby": "jt-ttl-help" });
    const uses = h("input", { id: "jt-uses", name: "uses", type: "number", value: "1", min: "1", max: "1000", step: "1", required: true, "aria-describedby": "jt-uses-help" });
    const err = h("p", { id: "jt-error", class: "form-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create join token");
    const form = h(
      "form",
      { id: "jt-create", class: "token-form", "aria-label": "Create a join token", novalidate: true },
      h("div", { class: "field" }, h("label", { for: "jt-role" }, "Role"), role, h("p", { class: "help" }, "of the new node")),
      h("div", { class: "field" }, h("label", { for: "jt-ttl" }, "Valid for"), ttl, h("p", { id: "jt-ttl-help", class: "help" }, "e.g. 15m, 2h, 7d")),
      h("div", { class: "field" }, h("label", { for: "jt-uses" }, "Joins"), uses, h("p", { id: "jt-uses-help", class: "help" }, "how many hosts")),
      h("div", { class: "field field-submit" }, submit),
      err,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      const t = ttl.value.trim();
      const n = Number(uses.value);
      if (!t) {
        err.textContent = "Say how long the token stays valid, e.g. 15m.";
        ttl.focus();
        return;
      }
      if (!Number.isInteger(n) || n < 1) {
        err.textContent = "Joins must be a whole number of at least 1.";
        uses.focus();
        return;
      }
      let failed = false;
      submit.disabled = true;
      replace(submit, h("span", { class: "spinner", "aria-hidden": "true" }), "Creating…");
      try {
        const r = await api("POST", "/cluster/tokens", { role: role.value, ttl: t, uses: n });
        showNewToken(r, role.value, n);
        await loadTokens();
      } catch (e) {
        failed = true;
        err.textContent =
          e instanceof ApiError && e.status === 403
            ? "Only admins can make join tokens."
            : e instanceof NetworkError
              ? "containerctld cannot be reached."
              : `Could not create the token: ${e.message}`;
      } finally {
        submit.disabled = false;
        submit.textContent = "Create join token";
      }
      if (failed) (e400(err) ? ttl : submit).focus();
    });
    return form;
  }

  function showNewToken(r, role, uses) {
    const box = parts.newToken;
    const inputId = newId("jt-new");
    const input = h("input", { id: inputId, type: "text", class: "token-value mono", readonly: true, value: r.token, spellcheck: "false", autocomplete: "off" });
    const done = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Done, hide it");
    done.addEventListener("click", () => {
      clear(box);
      const f = document.getElementById("jt-role");
      if (f) f.focus();
    });
    replace(
      box,
      h(
        "div",
        { class: "token-once", role: "region", "aria-label": "New join token", "data-token-id": r.id },
        h("h3", {}, `New join token `, h("code", {}, r.id)),
        h("p", {}, h("strong", {}, "Copy it now: it is shown only this once. "), `A ${role} can join with it ${uses === 1 ? "once" : `${uses} times`}, until `, timeEl(r.expires_at_ms), "."),
        h("label", { for: inputId }, "Join token"),
        h("div", { class: "copy-row" }, input, copyButton(() => r.token, "the join token")),
        h("p", { class: "help" }, "On the new host, as root: ", h("code", {}, "containerctl cluster join"), " with this token."),
        done,
      ),
    );
    input.focus();
    input.select();
    announce(`Join token ${r.id} created. Copy it now: it is shown only once.`);
  }

  async function revoke(t, btn) {
    btn.disabled = true;
    replace(btn, h("span", { class: "spinner", "aria-hidden": "true" }), "Revoking…");
    clear(parts.tokensMsg);
    try {
      await api("DELETE", `/cluster/tokens/${encodeURIComponent(t.id)}`);
      announce(`Join token ${t.id} revoked`);
      await loadTokens();
      // The button is gone with the token's new state (and a disabled button drops the focus).
      if (!document.activeElement || document.activeElement === document.body) {
        const row = [...parts.tokensBody.querySelectorAll("tr[data-token]")].find((r) => r.dataset.token === t.id);
        const cell = row && row.querySelector(".c-state");
        if (cell) {
          cell.setAttribute("tabindex", "-1");
          cell.focus();
        } else parts.tokensHeading.focus();
      }
    } catch (e) {
      btn.disabled = false;
      btn.textContent = "Revoke";
      replace(parts.tokensMsg, errorBox(e, `Could not revoke ${t.id}`));
    }
  }

  function paintTokens(result) {
    const box = parts.tokensBody;
    if (result.status === "rejected") {
      const e = result.reason;
      last.tokens = "";
      if (e.name === "AbortError") return;
      box.dataset.state = "error";
      if (e instanceof ApiError && (e.status === 403 || e.status === 409)) {
        tokensDenied = e;
        const note = parts.tokensBody.parentNode.querySelector(".no-create");
        if (note) note.hidden = true;
        replace(box, h("p", { class: "note tokens-denied" }, e.status === 403 ? "Only admins can see the join tokens." : "Join tokens are kept by the managers: make one on a manager's Cluster page."));
      } else replace(box, errorBox(e, "Could not load the join tokens", loadTokens));
      return;
    }
    const list = [...(result.value || [])].sort((a, b) => (b.created_at_ms || 0) - (a.created_at_ms || 0));
    box.dataset.state = "loaded";
    const key = JSON.stringify(list);
    if (key === last.tokens) return;
    last.tokens = key;
    if (!list.length) {
      keepFocus(box, () => replace(box, h("p", { class: "empty" }, "No join tokens yet.")), parts.tokensHeading);
      return;
    }
    const admin = can("admin");
    const cols = ["Token", "Role", "State", "Joins", "Created", "Expires"];
    if (admin) cols.push("");
    const tbody = h("tbody", {});
    for (const t of list) {
      let action = null;
      if (admin) {
        action = h("td", { "data-label": "" });
        if (t.state === "valid") {
          const btn = h("button", { type: "button", class: "btn btn-small btn-stop", "data-action": "revoke", "data-key": `revoke:${t.id}` }, "Revoke", h("span", { class: "visually-hidden" }, ` ${t.id}`));
          btn.addEventListener("click", () => revoke(t, btn));
          action.append(btn);
        }
      }
      tbody.append(
        h("tr", { "data-token": t.id, class: t.state === "valid" ? "" : "row-muted" },
          h("td", { "data-label": "Token" }, h("code", {}, t.id)),
          h("td", { "data-label": "Role" }, t.role || "—"),
          h("td", { "data-label": "State", class: "c-state" }, tokenStateBadge(t.state)),
          h("td", { "data-label": "Joins", class: "num" }, `${t.used ?? 0} of ${t.uses ?? "?"}`),
          h("td", { "data-label": "Created" }, ago(t.created_at_ms)),
          h("td", { "data-label": "Expires" }, ago(t.expires_at_ms)),
          action),
      );
    }
    keepFocus(
      box,
      () =>
        replace(box, h("div", { class: "table-wrap" },
          tableRoles(h("table", { class: "list tokens" },
            h("caption", { class: "visually-hidden" }, "Join tokens, newest first"),
            h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", { scope: "col" }, c || h("span", { class: "visually-hidden" }, "Actions"))))),
            tbody)))),
      parts.tokensHeading,
    );
  }

  async function loadTokens() {
    if (!parts) return;
    if (tokensDenied) return paintTokens({ status: "rejected", reason: tokensDenied });
    const [r] = await Promise.allSettled([api("GET", "/cluster/tokens", undefined, { signal: ctx.signal })]);
    if (ctx.signal.aborted || !parts) return;
    paintTokens(r);
  }

  // ----- loading -----

  async function load() {
    let c;
    try {
      c = await api("GET", "/cluster", undefined, { signal: ctx.signal });
    } catch (e) {
      if (e.name === "AbortError" || ctx.signal.aborted) return;
      if (!built) replace(body, errorBox(e, "Could not load the cluster", run));
      else replace(stale, h("p", { class: "card-err", role: "alert" }, `Could not refresh: ${e instanceof NetworkError ? "containerctld cannot be reached" : e.message}. The page shows what it knew before.`));
      return;
    }
    if (ctx.signal.aborted) return;
    clear(stale);
    cluster = c;
    if (!c || !c.member) {
      showNotMember();
      return;
    }
    buildMember(c);
    paintSelf(c);
    paintRegistry(c.registry);
    paintShared(c.shared);
    const [nodes, tokens] = await Promise.allSettled([
      api("GET", "/cluster/nodes", undefined, { signal: ctx.signal }),
      tokensDenied ? Promise.reject(tokensDenied) : api("GET", "/cluster/tokens", undefined, { signal: ctx.signal }),
    ]);
    if (ctx.signal.aborted || !parts) return;
    paintNodes(nodes);
    paintTokens(tokens);
    await parts.moves.load(ctx.signal);
    tick(body);
  }

  const loader = liveLoader(load);
  const run = loader.run;
  run();
  return () => loader.stop();
}

// ---------- #/cluster/nodes/ID ----------

function nodeUnitsList(n, isSelf) {
  const units = sortUnits(n.units);
  if (!units.length) return h("p", { class: "muted node-units-empty" }, `No units on ${n.hostname || n.id}.`);
  return h(
    "ul",
    { class: "node-units", "aria-label": `Units on ${n.hostname || n.id}` },
    ...units.map((u) =>
      h("li", { "data-unit": u.name },
        unitName(u.name, isSelf),
        stateBadge(u),
        u.image || u.version ? h("span", { class: "desc mono", title: `${u.image || "?"}:${u.version || "?"}` }, `${u.image || "?"}:${u.version || "?"}`) : null)),
  );
}

const HISTORY_CLASS = { up: "ev-ok", joined: "ev-ok", down: "ev-bad", left: "ev-muted", removed: "ev-muted", report: "ev-report" };

export function renderClusterNode(main, id, ctx) {
  ctx.setTitle(`Node ${id}`);
  const heading = h("h1", {}, id);
  const stateSlot = h("span", { class: "state-slot" });
  const meta = h("p", { class: "unit-meta muted" });
  const stale = h("div", { "aria-live": "polite" });
  const body = h("div", { class: "node-detail" }, h("p", { class: "loading" }, "Loading the node…"));
  const crumbName = h("span", { "aria-current": "page" }, id);
  replace(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/cluster" }, "Cluster"), h("span", { "aria-hidden": "true" }, " / "), crumbName),
    h("header", { class: "unit-head" }, h("div", { class: "unit-title" }, heading, stateSlot), meta),
    stale,
    body,
  );

  let parts = null;
  let lastKey = "";
  const showReports = h("input", { type: "checkbox", id: "hist-reports" });

  function build() {
    const card = (title, ...rest) => h("section", { class: "card", "aria-label": title }, h("h2", {}, title), ...rest);
    parts = {
      facts: h("dl", { class: "facts" }),
      res: h("div", {}),
      units: h("div", {}),
      unitsTitle: h("h2", {}, "Units"),
      images: h("div", {}),
      devices: h("div", {}),
      history: h("ol", { class: "events node-history" }),
      histNote: h("p", { class: "muted small" }),
    };
    showReports.addEventListener("change", () => paintHistory(parts.lastHistory || []));
    replace(
      body,
      h("div", { class: "grid-2" }, card("Status", parts.facts), card("Resources", parts.res)),
      h("section", { class: "card", "aria-label": "Units", id: "node-units" }, parts.unitsTitle, parts.units),
      h("div", { class: "grid-2" }, card("Images", parts.images), card("Devices", parts.devices)),
      h("section", { class: "card", "aria-label": "History", id: "node-history" },
        h("h2", {}, "History"),
        h("div", { class: "toolbar" }, h("label", { class: "check", for: "hist-reports" }, showReports, " Show reports too")),
        parts.history,
        parts.histNote),
    );
  }

  function paintHistory(list) {
    parts.lastHistory = list;
    const shown = showReports.checked ? list : list.filter((e) => e.kind !== "report");
    const hiddenN = list.length - shown.length;
    replace(
      parts.history,
      ...shown.map((e) => h("li", { class: `event ${HISTORY_CLASS[e.kind] || ""}`, "data-kind": e.kind }, timeEl(e.at_ms), " ", h("span", { class: "ev-kind" }, e.kind), e.detail ? ` ${e.detail}` : "")),
    );
    if (!shown.length) parts.history.append(h("li", { class: "muted" }, list.length ? "Only reports: tick “Show reports too” to see them." : "Nothing recorded yet."));
    parts.histNote.textContent = hiddenN ? `${plural(hiddenN, "report")} hidden. Newest first.` : "Newest first.";
  }

  function paint(n, selfId) {
    const isSelf = n.id === selfId;
    ctx.setTitle(n.hostname || n.id);
    heading.textContent = n.hostname || n.id;
    crumbName.textContent = n.hostname || n.id;
    replace(stateSlot, nodeStateBadge(n.state), isSelf ? h("span", { class: "badge tag" }, "this host") : null);
    meta.textContent = [n.role, n.addr, n.id].filter(Boolean).join(" · ");
    const key = JSON.stringify([n, isSelf]);
    if (key === lastKey) return;
    lastKey = key;
    if (!parts) build();
    const r = n.resources || {};
    const rows = [
      ["State", nodeStateBadge(n.state)],
      ["Role", n.role || "—"],
      ["Address", h("code", {}, n.addr || "—")],
      ["Node", h("code", {}, n.id)],
      ["Swarm", n.swarm_state || n.availability ? `${n.availability || "?"} · ${n.swarm_state || "?"}` : h("span", { class: "muted" }, "not in the swarm")],
      ["Joined", n.joined_at_ms ? timeEl(n.joined_at_ms) : "—"],
      ["Last seen", [ago(n.last_seen_ms), n.last_seen_ms ? h("span", { class: "muted small" }, " (", timeEl(n.last_seen_ms), ")") : null]],
      ["Containers", Number.isFinite(n.containers) ? String(n.containers) : "—"],
    ];
    replace(parts.facts, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const mem = Number.isFinite(r.memory_total_bytes) && Number.isFinite(r.memory_available_bytes) ? r.memory_total_bytes - r.memory_available_bytes : NaN;
    replace(
      parts.res,
      h("dl", { class: "facts" },
        h("dt", {}, "CPUs"), h("dd", {}, Number.isFinite(r.cpus) ? String(r.cpus) : "—"),
        h("dt", {}, "Load (1 min)"), h("dd", {}, Number.isFinite(r.load1) ? r.load1.toFixed(2) : "—"),
        h("dt", {}, "Memory free"), h("dd", {}, Number.isFinite(r.memory_available_bytes) ? `${fmtBytes(r.memory_available_bytes)} of ${fmtBytes(r.memory_total_bytes)}` : "—"),
        h("dt", {}, "Disk free"), h("dd", {}, fmtBytes(r.disk_avail_bytes))),
      h("h3", {}, "Memory"),
      usageBar(mem, r.memory_total_bytes, `Memory of ${n.hostname || n.id}`),
    );
    const us = unitsSummary(n.units);
    replace(parts.unitsTitle, `Units (${us.n})`);
    const units = sortUnits(n.units);
    if (!units.length) replace(parts.units, h("p", { class: "muted" }, "No units on this node."));
    else {
      replace(
        parts.units,
        h("div", { class: "table-wrap" },
          tableRoles(h("table", { class: "list node-unit-table" },
            h("caption", { class: "visually-hidden" }, `Units on ${n.hostname || n.id}`),
            h("thead", {}, h("tr", {}, ...["Unit", "State", "Image", "Version"].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, ...units.map((u) =>
              h("tr", { "data-unit": u.name },
                h("td", { "data-label": "Unit" }, unitName(u.name, isSelf)),
                h("td", { "data-label": "State" }, stateBadge(u)),
                h("td", { "data-label": "Image" }, h("code", { class: "wrap" }, u.image || "—")),
                h("td", { "data-label": "Version" }, h("code", {}, u.version || "—")))))))),
        isSelf ? null : h("p", { class: "help" }, "Units on other nodes are changed on those hosts."),
      );
    }
    const images = [...(n.images || [])].sort();
    replace(parts.images, images.length ? h("ul", { class: "plain" }, ...images.map((i) => h("li", {}, h("code", { class: "wrap" }, i)))) : h("p", { class: "muted" }, "No images reported."));
    const devices = [...(n.devices || [])].sort();
    replace(parts.devices, devices.length ? h("ul", { class: "plain" }, ...devices.map((d) => h("li", {}, h("code", { class: "wrap" }, d)))) : h("p", { class: "muted" }, "No devices reported."));
    paintHistory(n.history || []);
  }

  async function load() {
    const [node, cl] = await Promise.allSettled([
      api("GET", nodePath(id), undefined, { signal: ctx.signal }),
      api("GET", "/cluster", undefined, { signal: ctx.signal }),
    ]);
    if (ctx.signal.aborted) return;
    if (node.status === "rejected") {
      const e = node.reason;
      if (e.name === "AbortError") return;
      if (e instanceof ApiError && e.status === 404) {
        parts = null;
        lastKey = "";
        replace(stateSlot);
        replace(body, h("p", {}, "The cluster has no node with this id. ", h("a", { href: "#/cluster" }, "See all nodes"), "."));
        heading.textContent = "No such node";
      } else if (e instanceof ApiError && e.status === 409) {
        replace(body, h("p", { class: "note" }, "This host is not a manager: the nodes are known to the managers only. ", h("a", { href: "#/cluster" }, "Back to the cluster"), "."));
      } else if (!parts) replace(body, errorBox(e, "Could not load the node", run));
      else replace(stale, h("p", { class: "card-err", role: "alert" }, `Could not refresh: ${e instanceof NetworkError ? "containerctld cannot be reached" : e.message}. The page shows what it knew before.`));
      return;
    }
    clear(stale);
    const selfId = cl.status === "fulfilled" && cl.value ? cl.value.node_id : null;
    paint(node.value, selfId);
    tick(main);
  }

  const loader = liveLoader(load);
  const run = loader.run;
  run();
  return () => loader.stop();
}

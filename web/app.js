// containerctl web page: session, routing, the page frame (navigation, banner, theme).
// Hash routes: #/units, #/units/NAME[/config|/history|/logs], #/devices, #/cluster,
// #/cluster/nodes/ID, #/secrets (registries and secrets), #/audit, #/new-unit, #/import (a Compose
// file);
// #login=TOKEN (from `containerctl web login`) logs in and is removed from the address at once.

import { h, replace, announce } from "./dom.js";
import {
  api,
  ApiError,
  NetworkError,
  NAME_RE,
  session,
  setSession,
  setHooks,
  startStream,
  resetLive,
  onStreamState,
  onUnits,
  can,
} from "./api.js";
import { renderUnits } from "./units.js";
import { renderUnit } from "./unit.js";
import { renderDevices, renderAudit } from "./pages.js";
import { renderCluster, renderClusterNode } from "./cluster.js";
import { renderSecrets } from "./secrets.js";
import { renderNewUnit } from "./create.js";
import { renderImport } from "./importer.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const navAudit = document.getElementById("nav-audit");
const navSecrets = document.getElementById("nav-secrets");
const who = document.getElementById("who");
const logoutBtn = document.getElementById("logout");
const banner = document.getElementById("banner");
const liveEl = document.getElementById("live");
const themeBtn = document.getElementById("theme-toggle");

let cleanup = null;
let routeCtl = null;
let returnTo = null; // the route to show after logging in again
let firstRender = true;

// The skip link must not change the hash: that is the router's.
document.querySelector(".skip-link").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
  main.scrollIntoView();
});

// ---------- theme ----------

const THEMES = ["system", "light", "dark"];
function currentTheme() {
  return document.documentElement.getAttribute("data-theme") || "system";
}
function showTheme() {
  const t = currentTheme();
  replace(themeBtn, h("span", { class: "theme-icon", "aria-hidden": "true" }, t === "dark" ? "☾" : t === "light" ? "☀" : "◐"), " ", h("span", { class: "theme-word" }, "Theme: "), `${t[0].toUpperCase()}${t.slice(1)}`);
  const next = THEMES[(THEMES.indexOf(t) + 1) % THEMES.length];
  themeBtn.setAttribute("aria-label", `Theme: ${t}. Switch to ${next}.`);
}
themeBtn.addEventListener("click", () => {
  const next = THEMES[(THEMES.indexOf(currentTheme()) + 1) % THEMES.length];
  if (next === "system") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", next);
  try {
    if (next === "system") localStorage.removeItem("containerctl-theme");
    else localStorage.setItem("containerctl-theme", next);
  } catch {
    /* storage disabled: the choice lasts for this page only */
  }
  showTheme();
  announce(`Theme: ${next}`);
});
showTheme();

// ---------- banner (network errors) ----------

let probeTimer = null;
let bannerKind = null;

function showBanner(kind, message, retry) {
  bannerKind = kind;
  const children = [h("span", {}, message)];
  if (retry) children.push(h("button", { type: "button", class: "btn btn-small", onclick: retry }, "Retry now"));
  replace(banner, ...children);
  banner.hidden = false;
}

function hideBanner(kind) {
  if (kind && bannerKind !== kind) return;
  bannerKind = null;
  banner.hidden = true;
  replace(banner);
}

function networkDown() {
  if (bannerKind === "network") return;
  showBanner("network", "Cannot reach containerctld. Retrying every 5 seconds…", () => probe(true));
  clearInterval(probeTimer);
  probeTimer = setInterval(() => probe(false), 5000);
}

async function probe(manual) {
  try {
    const s = await api("GET", "/session", undefined, { quiet: true });
    setSession(s);
    if (nav.hidden) enterApp();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && nav.hidden) showLogin();
    else if (manual && e instanceof NetworkError) announce("containerctld is still unreachable");
  }
}

setHooks({
  network: networkDown,
  reachable() {
    if (bannerKind !== "network") return;
    // The daemon answers again: drop the banner and reload the page's data.
    clearInterval(probeTimer);
    probeTimer = null;
    hideBanner("network");
    announce("Connection to containerctld restored");
    setTimeout(() => {
      if (session.role && !nav.hidden) route();
    }, 0);
  },
  unauthorized() {
    if (session.role === null && nav.hidden) return;
    returnTo = location.hash && !location.hash.startsWith("#login=") ? location.hash : null;
    leaveApp();
    showLogin("Your session has ended. Please log in again.");
  },
});

// ---------- live indicator ----------

onStreamState((state) => {
  liveEl.hidden = state === "idle";
  liveEl.dataset.state = state;
  const text = state === "open" ? "Live" : state === "connecting" ? "Connecting…" : "Reconnecting…";
  liveEl.querySelector(".live-text").textContent = text;
  liveEl.title =
    state === "open" ? "Receiving live updates" : "Live updates are interrupted; the page reconnects by itself";
  if (state === "retrying") {
    if (bannerKind !== "network") showBanner("stream", "Live updates interrupted. Reconnecting…");
  } else hideBanner("stream");
});

// A failing unit is worth saying wherever the person is on the page.
onUnits((changes) => {
  const failed = changes.filter((c) => c.before && c.after && c.after.active_state === "failed" && c.before.active_state !== "failed");
  if (failed.length) announce(`${failed.map((c) => c.name).join(", ")} failed`);
});

// ---------- session ----------

function leaveApp() {
  setSession(null);
  resetLive();
  if (cleanup) cleanup();
  cleanup = null;
  if (routeCtl) routeCtl.abort();
  nav.hidden = true;
  who.hidden = true;
  logoutBtn.hidden = true;
}

function enterApp() {
  nav.hidden = false;
  navAudit.hidden = !can("admin");
  // Operators list secrets (names only); registries are the admins'; viewers see neither.
  navSecrets.hidden = !can("operator");
  replace(who, h("span", { class: "who-name" }, session.name || "token"), " ", h("span", { class: `role role-${session.role}` }, session.role));
  who.hidden = false;
  logoutBtn.hidden = false;
  startStream({
    closed() {
      // The stream was refused or dropped: a 401 here sends the page back to the login form.
      api("GET", "/session").catch(() => {});
    },
  });
  if (!location.hash || location.hash === "#" || location.hash.startsWith("#/login")) {
    history.replaceState(null, "", returnTo || "#/units");
  }
  returnTo = null;
  route();
}

async function restoreSession() {
  try {
    const s = await api("GET", "/session", undefined, { allow401: true });
    setSession(s);
    enterApp();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin();
    else if (e instanceof NetworkError) {
      replace(
        main,
        h("h1", { tabindex: "-1" }, "containerctl"),
        h("p", {}, "The page cannot reach containerctld. It keeps trying; you can also retry now."),
        h("button", { type: "button", class: "btn", onclick: () => probe(true) }, "Retry now"),
      );
    } else showLogin(e.message);
  }
}

async function loginWithToken(token, { fromLink = false } = {}) {
  const body = await api("POST", "/session", { token }, { allow401: true });
  setSession(body);
  announce(`Logged in as ${body.name || "token"}, role ${body.role}`);
  if (fromLink || location.hash.startsWith("#login=") || location.hash.startsWith("#/login")) {
    history.replaceState(null, "", returnTo || "#/units");
  }
  enterApp();
}

function showLogin(message) {
  if (cleanup) cleanup();
  cleanup = null;
  document.title = "Log in · containerctl";
  const id = "login-token";
  const err = h("p", { id: "login-error", class: "form-error", role: "alert" }, message || "");
  const input = h("input", {
    id,
    name: "token",
    type: "password",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "login-help login-error",
  });
  const show = h("input", {
    type: "checkbox",
    id: "login-show",
    onchange: (e) => (input.type = e.target.checked ? "text" : "password"),
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Log in");
  const form = h(
    "form",
    {
      class: "login-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const token = input.value.trim();
        if (!token) {
          err.textContent = "Paste a token first.";
          input.focus();
          return;
        }
        submit.disabled = true;
        submit.textContent = "Logging in…";
        err.textContent = "";
        try {
          await loginWithToken(token);
        } catch (e) {
          submit.disabled = false;
          submit.textContent = "Log in";
          err.textContent =
            e instanceof ApiError && e.status === 401
              ? "This token was refused: it may be mistyped, expired, revoked, or a one-time link already used."
              : e instanceof NetworkError
                ? "containerctld cannot be reached. Check that it is running and try again."
                : `Login failed: ${e.message}`;
          input.focus();
        }
      },
    },
    h("label", { for: id }, "Access token"),
    input,
    h("label", { class: "check" }, show, " Show token"),
    submit,
    err,
  );
  replace(
    main,
    h(
      "section",
      { class: "login card", "aria-labelledby": "login-h" },
      h("h1", { id: "login-h", tabindex: "-1" }, "Log in to containerctl"),
      h(
        "div",
        { id: "login-help", class: "muted" },
        h("p", {}, "Paste an access token. On the host, get a one-time login link with ", h("code", {}, "containerctl web login"), ", or a token with ", h("code", {}, "containerctl token create --name NAME --role viewer|operator|admin"), "."),
      ),
      form,
    ),
  );
  input.focus();
}

logoutBtn.addEventListener("click", async () => {
  try {
    await api("DELETE", "/session");
  } catch {
    /* the session is dropped on this side anyway */
  }
  returnTo = null;
  leaveApp();
  history.replaceState(null, "", "#/login");
  showLogin("You are logged out.");
  announce("Logged out");
});

// ---------- routing ----------

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, "");
  const parts = hash.replace(/^\/+/, "").split("/").filter(Boolean).map(safeDecode);
  if (parts.length === 0 || (parts[0] === "units" && parts.length === 1)) return { name: "units" };
  if (parts[0] === "units") return { name: "unit", unit: parts[1], tab: parts[2] || "overview" };
  if (parts[0] === "devices") return { name: "devices" };
  if (parts[0] === "cluster" && parts.length === 1) return { name: "cluster" };
  if (parts[0] === "cluster" && parts[1] === "nodes" && parts.length === 3) return { name: "node", node: parts[2] };
  if (parts[0] === "audit") return { name: "audit" };
  if (parts[0] === "secrets") return { name: "secrets" };
  if (parts[0] === "new-unit" && parts.length === 1) return { name: "new-unit" };
  if (parts[0] === "import" && parts.length === 1) return { name: "import" };
  if (parts[0] === "login") return { name: "units" };
  return { name: "notfound" };
}

function setTitle(t) {
  document.title = t ? `${t} · containerctl` : "containerctl";
}

function route() {
  if (!session.role) return;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a view's cleanup must not break navigation */
    }
  }
  cleanup = null;
  if (routeCtl) routeCtl.abort();
  routeCtl = new AbortController();
  const r = parseRoute();
  for (const a of nav.querySelectorAll("a[data-nav]")) {
    const current =
      a.dataset.nav === r.name ||
      (a.dataset.nav === "units" && ["unit", "new-unit", "import"].includes(r.name)) ||
      (a.dataset.nav === "cluster" && r.name === "node");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  replace(main);
  const ctx = { signal: routeCtl.signal, setTitle, rerender: route };
  let result = null;
  if (r.name === "units") result = renderUnits(main, ctx);
  else if (r.name === "unit") {
    if (!NAME_RE.test(r.unit)) {
      setTitle("Not found");
      replace(main, h("h1", { tabindex: "-1" }, "Not a unit name"), h("p", {}, "Unit names are 1–64 characters of a–z, 0–9, “_”, “.” and “-”, starting with a letter or digit."), h("p", {}, h("a", { href: "#/units" }, "All units")));
    } else result = renderUnit(main, r.unit, r.tab, ctx);
  } else if (r.name === "devices") result = renderDevices(main, ctx);
  else if (r.name === "cluster") result = renderCluster(main, ctx);
  else if (r.name === "node") result = renderClusterNode(main, r.node, ctx);
  else if (r.name === "audit") result = renderAudit(main, ctx);
  else if (r.name === "secrets") result = renderSecrets(main, ctx);
  else if (r.name === "new-unit") result = renderNewUnit(main, ctx);
  else if (r.name === "import") result = renderImport(main, ctx);
  else {
    setTitle("Not found");
    replace(main, h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, h("a", { href: "#/units" }, "Go to the units")));
  }
  cleanup = typeof result === "function" ? result : null;
  if (!firstRender) {
    const h1 = main.querySelector("h1");
    if (h1) {
      h1.setAttribute("tabindex", "-1");
      h1.focus();
    }
  }
  firstRender = false;
}

window.addEventListener("hashchange", () => {
  if (location.hash === "#main") return;
  if (location.hash.startsWith("#login=")) {
    handleLoginLink();
    return;
  }
  if (session.role) route();
});

async function handleLoginLink() {
  const token = safeDecode(location.hash.slice("#login=".length));
  // The token must not stay in the address bar or the history.
  history.replaceState(null, "", `${location.pathname}${location.search}#/units`);
  leaveApp();
  replace(main, h("p", { class: "loading" }, "Logging in…"));
  try {
    await loginWithToken(token, { fromLink: true });
  } catch (e) {
    showLogin(
      e instanceof ApiError && e.status === 401
        ? "This login link was refused: it works once and for 5 minutes. Run `containerctl web login` again, or paste a token."
        : e instanceof NetworkError
          ? "containerctld cannot be reached."
          : `Login failed: ${e.message}`,
    );
  }
}

if (location.hash.startsWith("#login=")) handleLoginLink();
else restoreSession();

// Registry credentials and secrets (#/secrets): admins log in to registries, test and remove
// them, and set and remove secrets; operators see the secrets' names and who uses them; viewers
// see nothing of either. A password or a secret's value goes from its field straight into one
// request body: the field is emptied before the request leaves, nothing keeps it, no answer
// holds it, and it never reaches an address.

import { h, replace, clear, announce, timeEl, fmtBytes, tableRoles, newId } from "./dom.js";
import { api, ApiError, can } from "./api.js";
import { failure, unitLinks } from "./pages.js";

// The daemon's rule for a secret's NAME (containerctl.unit(5)), checked here too because the name
// is a path segment: "." or ".." would be resolved away by the browser before the daemon sees it.
const SECRET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SECRET_NAME_RULE = "1-64 characters of [A-Za-z0-9][A-Za-z0-9_.-]*";

function when(ms) {
  return ms ? timeEl(ms) : h("span", { class: "muted" }, "never");
}

function table(caption, cols, tbody, cls) {
  return h("div", { class: "table-wrap" },
    tableRoles(h("table", { class: `list ${cls}` },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", { scope: "col" }, c)))),
      tbody)));
}

/** A row's action that asks first: the button turns into "QUESTION [yes] [Cancel]" in place. */
function confirmButton(label, question, yes, run) {
  const slot = h("span", { class: "confirm-slot" });
  const first = h("button", { type: "button", class: "btn btn-small btn-ghost" }, label);
  first.addEventListener("click", () => {
    const go = h("button", { type: "button", class: "btn btn-small btn-stop" }, yes);
    const cancel = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Cancel");
    cancel.addEventListener("click", () => {
      replace(slot, first);
      first.focus();
    });
    go.addEventListener("click", () => {
      go.disabled = true;
      cancel.disabled = true;
      run();
    });
    replace(slot, h("span", { class: "confirm-q" }, question, " "), go, " ", cancel);
    go.focus();
  });
  return replace(slot, first);
}

export function renderSecrets(main, ctx) {
  const admin = can("admin");
  ctx.setTitle(admin ? "Registries and secrets" : "Secrets");
  if (!can("operator")) {
    replace(main, h("h1", {}, "Secrets"), h("p", {}, "Only operators and admins can see which secrets exist. Your role is viewer."));
    return null;
  }
  const parts = [h("div", { class: "page-head" }, h("h1", {}, admin ? "Registries and secrets" : "Secrets"))];
  if (admin) parts.push(registriesSection(ctx));
  parts.push(secretsSection(ctx, admin));
  replace(main, ...parts);
  return null;
}

// ---------- registries (admin) ----------

function registriesSection(ctx) {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading the registries…"));
  const out = h("div", { class: "reg-out", "aria-live": "polite" });
  const reg = h("input", { id: "reg-name", name: "registry", type: "text", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", placeholder: "registry.example:5000/team", "aria-describedby": "reg-name-help" });
  const user = h("input", { id: "reg-user", name: "username", type: "text", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false" });
  const pass = h("input", { id: "reg-password", name: "password", type: "password", required: true, autocomplete: "off" });
  const err = h("p", { id: "reg-error", class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Log in and save");
  const form = h(
    "form",
    { id: "reg-login", class: "inline-form", "aria-label": "Log in to a registry", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "reg-name" }, "Registry"), reg, h("p", { id: "reg-name-help", class: "help" }, "HOST[:PORT][/NAMESPACE]; docker.io for Docker Hub")),
    h("div", { class: "field" }, h("label", { for: "reg-user" }, "User"), user),
    h("div", { class: "field" }, h("label", { for: "reg-password" }, "Password"), pass),
    h("div", { class: "field-submit" }, submit),
    err,
  );

  const load = () =>
    api("GET", "/registries", undefined, { signal: ctx.signal })
      .then((list) => {
        if (!list.length) {
          replace(body, h("p", { class: "empty" }, "No registry credentials stored: units pull public images and the cluster's registry only."));
          return;
        }
        const tbody = h("tbody", {});
        for (const r of list) {
          const status = h("span", { class: "reg-status", "aria-live": "polite" });
          const test = h("button", { type: "button", class: "btn btn-small" }, "Test");
          test.addEventListener("click", async () => {
            test.disabled = true;
            replace(status, h("span", { class: "spinner", "aria-hidden": "true" }), "Testing…");
            try {
              const t = await api("POST", "/registries/test", { registry: r.registry });
              replace(status, h("span", { class: "badge ok" }, "ok"), ` ${t.message || ""}`);
              announce(`${r.registry}: the registry accepts the credential`);
            } catch (e) {
              replace(status, h("span", { class: "bad" }, e.message));
              announce(`${r.registry}: ${e.message}`);
            } finally {
              test.disabled = false;
            }
          });
          const remove = confirmButton("Remove", `Forget ${r.registry}?`, "Remove", async () => {
            try {
              await api("DELETE", `/registries?${new URLSearchParams({ registry: r.registry })}`);
              announce(`Removed the credential for ${r.registry}`);
              replace(out, h("p", { class: "job-ok" }, `✓ Removed the credential for ${r.registry}.`));
              load();
            } catch (e) {
              replace(out, h("div", { class: "card-err", role: "alert" }, h("p", {}, e.message)));
              load();
            }
          });
          tbody.append(
            h("tr", { "data-registry": r.registry },
              h("td", { "data-label": "Registry" }, h("code", { class: "wrap" }, r.registry)),
              h("td", { "data-label": "User" }, r.username),
              h("td", { "data-label": "Added" }, when(r.added_ms)),
              h("td", { "data-label": "Verified" }, when(r.verified_ms)),
              h("td", { "data-label": "Last used" }, when(r.last_used_ms)),
              h("td", { "data-label": "" }, h("div", { class: "row" }, test, remove), status)),
          );
        }
        replace(body, table("Stored registry credentials", ["Registry", "User", "Added", "Verified", "Last used", ""], tbody, "registries"));
      })
      .catch((e) => failure(body, e, load));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    const missing = [[reg, "the registry"], [user, "the user"], [pass, "the password"]].find(([el]) => !el.value.trim());
    if (missing) {
      err.textContent = `Enter ${missing[1]}.`;
      missing[0].focus();
      return;
    }
    const body = { registry: reg.value.trim(), username: user.value.trim(), password: pass.value };
    pass.value = ""; // the page keeps no copy: a retry means typing it again
    submit.disabled = true;
    replace(out, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), `Logging in to ${body.registry}…`));
    try {
      const r = await api("POST", "/registries", body);
      body.password = "";
      const msg = `Logged in to ${r.registry} as ${r.username}; the credential is stored.`;
      replace(out, h("p", { class: "job-ok" }, `✓ ${msg}`));
      announce(msg);
      reg.value = "";
      user.value = "";
      load();
    } catch (e) {
      body.password = "";
      clear(out);
      err.textContent = e instanceof ApiError && (e.kind === "registry_refused" || e.kind === "registry_failed")
        ? `Not stored: ${e.message}`
        : e.message;
      pass.focus();
    } finally {
      submit.disabled = false;
    }
  });

  load();
  return h("section", { class: "card", "aria-labelledby": "reg-h" },
    h("h2", { id: "reg-h" }, "Registries"),
    h("p", { class: "muted" }, "Credentials the host sends with every pull from these registries. The password is checked with the registry before it is stored, and is never shown again."),
    body,
    h("h3", {}, "Log in to a registry"),
    form,
    out);
}

// ---------- secrets ----------

function secretsSection(ctx, admin) {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading the secrets…"));
  const out = h("div", { class: "secret-out", "aria-live": "polite" });

  const load = () =>
    api("GET", "/secrets", undefined, { signal: ctx.signal })
      .then((list) => {
        if (!list.length) {
          replace(body, h("p", { class: "empty" }, admin ? "No secrets yet." : "No secrets yet. An admin sets them."));
          return;
        }
        const tbody = h("tbody", {});
        for (const s of list) {
          const cells = [
            h("td", { "data-label": "Name" }, h("code", {}, s.name)),
            h("td", { "data-label": "Used by" }, unitLinks(s.units)),
          ];
          if (admin) {
            const remove = confirmButton("Remove", `Remove ${s.name}?`, "Remove", () => removeSecret(s.name, false));
            cells.push(
              h("td", { "data-label": "Size", class: "num" }, fmtBytes(s.size)),
              h("td", { "data-label": "Created" }, when(s.created_at_ms)),
              h("td", { "data-label": "Updated" }, when(s.updated_at_ms), s.updated_by ? h("span", { class: "desc" }, `by ${s.updated_by}`) : null),
              h("td", { "data-label": "" }, remove),
            );
          }
          tbody.append(h("tr", { "data-secret": s.name }, ...cells));
        }
        const cols = admin ? ["Name", "Used by", "Size", "Created", "Updated", ""] : ["Name", "Used by"];
        replace(body, table("Secrets by name", cols, tbody, "secrets"));
      })
      .catch((e) => failure(body, e, load));

  async function removeSecret(name, force) {
    try {
      const r = await api("DELETE", `/secrets/${encodeURIComponent(name)}${force ? "?force=true" : ""}`);
      const msg = `Removed secret ${name}${r.units && r.units.length ? `; ${r.units.join(", ")} will fail at their next start` : ""}.`;
      replace(out, h("p", { class: "job-ok" }, `✓ ${msg}`));
      announce(msg);
    } catch (e) {
      const parts = [h("p", { class: "err-msg" }, e.message)];
      if (e instanceof ApiError && e.status === 409 && !force) {
        parts.push(
          h("p", {}, "Removing it anyway makes those units fail at their next start."),
          h("div", { class: "row" },
            h("button", { type: "button", class: "btn btn-small btn-stop", onclick: () => removeSecret(name, true) }, `Remove ${name} anyway`),
            h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => clear(out) }, "Keep it")),
        );
      }
      replace(out, h("div", { class: "card-err secret-refused", role: "alert" }, ...parts));
    }
    load();
  }

  load();
  const section = h("section", { class: "card", "aria-labelledby": "sec-h" },
    h("h2", { id: "sec-h" }, "Secrets"),
    h("p", { class: "muted" }, "Values units get as a file (", h("code", {}, "secrets"), ", at /run/secrets/NAME) or an environment variable (", h("code", {}, "env_secrets"), "). No page and no answer of the API shows a value."),
    body);
  if (admin) section.append(h("h3", {}, "Set a secret"), setSecretForm(out, load));
  section.append(out);
  return section;
}

function setSecretForm(out, load) {
  const name = h("input", { id: "sec-name", name: "name", type: "text", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", "aria-describedby": "sec-name-help" });
  const value = h("input", { id: "sec-value", name: "value", type: "password", autocomplete: "off", "aria-describedby": "sec-value-help" });
  const file = h("input", { id: "sec-file", name: "file", type: "file", "aria-describedby": "sec-value-help" });
  const err = h("p", { id: "sec-error", class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Set");
  const form = h(
    "form",
    { id: "sec-set", class: "inline-form", "aria-label": "Set a secret", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "sec-name" }, "Name"), name, h("p", { id: "sec-name-help", class: "help" }, "letters, digits, _ . -")),
    h("div", { class: "field" }, h("label", { for: "sec-value" }, "Value"), value),
    h("div", { class: "field" }, h("label", { for: "sec-file" }, "or from a file"), file),
    h("div", { class: "field-submit" }, submit),
    h("p", { id: "sec-value-help", class: "help form-wide" }, "Type the value or choose a file (up to 500 KiB, any bytes). Setting an existing name replaces its value; units that use it get the new one at their next start."),
    err,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    const n = name.value.trim();
    if (!n) {
      err.textContent = "Enter the secret's name.";
      name.focus();
      return;
    }
    if (!SECRET_NAME_RE.test(n)) {
      err.textContent = `Name: \`${n}\` is not a valid secret name: use ${SECRET_NAME_RULE}. Nothing was sent.`;
      name.focus();
      return;
    }
    const chosen = file.files && file.files[0];
    // Take the value out of the form before anything else: what follows keeps no copy of it.
    let payload = chosen || value.value;
    value.value = "";
    file.value = "";
    if (!chosen && payload === "") {
      err.textContent = "Type a value or choose a file.";
      value.focus();
      return;
    }
    submit.disabled = true;
    try {
      const r = await api("PUT", `/secrets/${encodeURIComponent(n)}`, payload, { bytes: true });
      payload = null;
      const users = r.units && r.units.length ? ` ${r.units.join(", ")} get${r.units.length === 1 ? "s" : ""} it at the next start.` : "";
      const msg = `Secret ${r.name} ${r.created ? "created" : "replaced"} (${fmtBytes(r.size)}).${users}`;
      replace(out, h("p", { class: "job-ok" }, `✓ ${msg}`));
      announce(msg);
      name.value = "";
      load();
    } catch (e) {
      payload = null;
      err.textContent = `Not set: ${e.message}`;
      name.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---------- the unit form's secrets (Config tab) ----------

/**
 * The `secrets` list (one checkbox per secret) and the `env_secrets` map (one row per variable:
 * its name and a secret chosen from the list) of a unit's [container]. `names` are the secrets
 * that exist (GET /secrets; empty for a viewer, who may not list them); a name the file uses that
 * does not exist is offered too, marked "not set".
 */
export function secretFields() {
  let known = [];
  let chosen = [];
  let rows = [];
  let disabled = false;
  const filesBox = h("div", { class: "secret-checks", id: "f-secrets", role: "group", "aria-labelledby": "f-secrets-label", "aria-describedby": "f-secrets-help" });
  const envBox = h("div", { class: "env-secrets", id: "f-env-secrets" });
  const addBtn = h("button", { type: "button", class: "btn btn-small", id: "f-env-secrets-add" }, "Add a variable");
  addBtn.addEventListener("click", () => {
    rows.push({ name: "", secret: known[0] || "" });
    draw();
    const inputs = envBox.querySelectorAll("input");
    if (inputs.length) inputs[inputs.length - 1].focus();
  });

  const options = (current) => {
    const all = [...new Set([...known, ...(current ? [current] : [])])].sort();
    return all.map((n) => h("option", { value: n, selected: n === current }, known.includes(n) ? n : `${n} (not set)`));
  };

  function draw() {
    const checks = [...new Set([...known, ...chosen])].sort();
    replace(filesBox, ...(checks.length
      ? checks.map((n) => {
        const id = newId("f-secret");
        const box = h("input", { type: "checkbox", id, value: n, checked: chosen.includes(n), disabled, "data-secret": n });
        box.addEventListener("change", () => {
          chosen = box.checked ? [...chosen, n] : chosen.filter((x) => x !== n);
          filesBox.dispatchEvent(new Event("input", { bubbles: true }));
        });
        return h("label", { class: "check", for: id }, box, " ", h("code", {}, n), known.includes(n) ? null : h("span", { class: "badge tag tag-warn" }, "not set"));
      })
      : [h("p", { class: "muted small" }, "No secrets exist yet.")]));
    replace(envBox, ...rows.map((r, i) => {
      const varId = newId("f-env-secret-var");
      const selId = newId("f-env-secret-name");
      const input = h("input", { type: "text", id: varId, value: r.name, disabled, autocomplete: "off", spellcheck: "false", class: "mono", placeholder: "VARIABLE" });
      input.addEventListener("input", () => (rows[i].name = input.value));
      const sel = h("select", { id: selId, disabled }, ...options(r.secret));
      sel.addEventListener("change", () => (rows[i].secret = sel.value));
      const rm = h("button", { type: "button", class: "btn btn-small btn-ghost", disabled, "aria-label": `Remove variable ${r.name || i + 1}` }, "Remove");
      rm.addEventListener("click", () => {
        rows.splice(i, 1);
        draw();
        envBox.dispatchEvent(new Event("input", { bubbles: true }));
        addBtn.focus();
      });
      return h("div", { class: "env-secret-row" },
        h("label", { for: varId, class: "visually-hidden" }, `Variable ${i + 1}`), input,
        h("span", { "aria-hidden": "true" }, " = secret "),
        h("label", { for: selId, class: "visually-hidden" }, `Secret of variable ${i + 1}`), sel, rm);
    }));
    addBtn.disabled = disabled;
  }

  const el = h("div", {},
    h("div", { class: "field" },
      h("span", { id: "f-secrets-label", class: "label" }, "Secrets as files"),
      filesBox,
      h("p", { id: "f-secrets-help", class: "help" }, "Each one is mounted read-only at /run/secrets/NAME.")),
    h("div", { class: "field" },
      h("span", { class: "label" }, "Secrets as environment variables"),
      envBox,
      addBtn,
      h("p", { class: "help" }, "The variable gets the secret's value when the container starts.")));

  return {
    el,
    /** The secrets that exist (names only). */
    setKnown(names) {
      known = [...names];
      draw();
    },
    /** The file's values: an array of names and a { VAR: NAME } map (either may be undefined). */
    set(secrets, envSecrets) {
      chosen = Array.isArray(secrets) ? secrets.map(String) : [];
      rows = envSecrets && typeof envSecrets === "object" ? Object.entries(envSecrets).map(([k, v]) => ({ name: k, secret: String(v) })) : [];
      draw();
    },
    setDisabled(d) {
      disabled = d;
      draw();
    },
    /** {secrets, env_secrets} or throws an Error naming the row to fix. */
    get() {
      const env = {};
      rows.forEach((r, i) => {
        const k = r.name.trim();
        if (!k && !r.secret) return;
        if (!k) throw new Error(`Secret variable ${i + 1}: enter the variable's name.`);
        if (!r.secret) throw new Error(`Secret variable ${k}: choose a secret.`);
        env[k] = r.secret;
      });
      return { secrets: [...chosen], env_secrets: env };
    },
  };
}

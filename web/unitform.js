// The form of a unit's [container] keys (image, version, args, env, devices, secrets), shared by
// the Config tab and the New unit view. It reads a unit file's text and gives back the values a
// person entered; toml.js writes them into the text, which the daemon then checks. The form never
// decides what is valid beyond what it must know to write the text (KEY=VALUE lines).

import { h, newId } from "./dom.js";
import { api, can } from "./api.js";
import { readUnit } from "./toml.js";
import { secretFields } from "./secrets.js";

const KEYS = ["image", "version", "args", "env", "devices"];

function field(id, label, control, help) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control, h("p", { id: `${id}-help`, class: "help" }, help));
}

/**
 * `mayEdit`: the role may change units (else the form is read only). `signal`: ends the request
 * for the secrets' names. `submitLabel` and `onSubmit(values)`: the submit button and what it does
 * with the values (only called when they could be read). `labelledBy`: the heading's id.
 * Returns {form, fill(text), values(), dirty}; `fill` answers whether the form could read the text.
 */
export function unitForm({ mayEdit, signal, submitLabel, onSubmit, labelledBy }) {
  const secrets = secretFields();
  let secretsOdd = false; // secrets or env_secrets written in a form the page cannot edit
  if (can("operator")) {
    // The names to offer (viewers may not list secrets: they see the file's names only).
    api("GET", "/secrets", undefined, { signal })
      .then((list) => secrets.setKnown(list.map((x) => x.name)))
      .catch(() => {});
  }
  const text = (id) => h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": `${id}-help` });
  const area = (id, rows) => h("textarea", { id, rows, wrap: "off", spellcheck: "false", "aria-describedby": `${id}-help` });
  const fields = {
    image: text("f-image"),
    version: text("f-version"),
    args: area("f-args", "4"),
    env: area("f-env", "3"),
    devices: area("f-devices", "2"),
  };
  const formNote = h("p", { class: "form-note", hidden: true });
  const formErr = h("p", { class: "form-error", role: "alert" });
  const fieldset = h(
    "fieldset",
    { disabled: !mayEdit },
    h("legend", { class: "visually-hidden" }, "Container settings"),
    field("f-image", "Image", fields.image, "The repository, without a tag, e.g. registry.example:5002/camera."),
    field("f-version", "Version (image tag)", fields.version, "The pinned tag of the image, e.g. 1.4.2."),
    field("f-args", "Arguments", fields.args, "One argument per line, passed to the image's entrypoint. Empty lines are ignored."),
    field("f-env", "Environment", fields.env, "One KEY=VALUE per line."),
    field("f-devices", "Devices", fields.devices, "One per line: HOST[:CONTAINER[:PERMISSIONS]], e.g. /dev/ttyUSB0:/dev/ttyS0:rw."),
    secrets.el,
    submitLabel ? h("div", { class: "row" }, h("button", { type: "submit", class: "btn" }, submitLabel)) : null,
  );
  const state = { dirty: false };
  const form = h("form", { class: "quick-form", "aria-labelledby": labelledBy || null, novalidate: true, id: newId("unit-form") }, formNote, fieldset, formErr);
  form.addEventListener("input", () => (state.dirty = true));

  function fill(t) {
    let doc;
    try {
      doc = readUnit(t);
    } catch (e) {
      formNote.hidden = false;
      formNote.textContent = `The form cannot read this text (${e.message}). Use the editor.`;
      fieldset.disabled = true;
      return false;
    }
    fieldset.disabled = !mayEdit;
    const v = (k) => doc.keys[k]?.value;
    for (const k of ["image", "version"]) fields[k].value = v(k) === undefined ? "" : String(v(k));
    const list = (x) => (Array.isArray(x) ? x.map(String).join("\n") : "");
    fields.args.value = list(v("args"));
    fields.devices.value = list(v("devices"));
    const env = v("env");
    fields.env.value = env && typeof env === "object" ? Object.entries(env).map(([k, x]) => `${k}=${x}`).join("\n") : "";
    for (const k of ["args", "env", "devices"]) fields[k].rows = Math.min(12, Math.max(k === "args" ? 4 : 2, fields[k].value.split("\n").length + 1));
    const odd = [...new Set(doc.unsupported)];
    for (const k of KEYS) fields[k].disabled = odd.includes(k);
    secretsOdd = odd.includes("secrets") || odd.includes("env_secrets");
    secrets.set(v("secrets"), v("env_secrets"));
    secrets.setDisabled(secretsOdd);
    formNote.hidden = odd.length === 0;
    formNote.textContent = odd.length ? `${odd.join(", ")} ${odd.length === 1 ? "is" : "are"} written in a form this page cannot edit; use the editor.` : "";
    formErr.textContent = "";
    state.dirty = false;
    return true;
  }

  /** The values entered, for toml.js's writeUnit; null (with the reason shown) when a field
   * cannot be written. `required`: an empty image or version is such a field (else it is
   * written empty, and the daemon's check says so). */
  function values({ required = true } = {}) {
    formErr.textContent = "";
    if (fieldset.disabled) return {};
    const out = {};
    const lines = (t) => t.split("\n").map((s) => s.replace(/\r$/, "")).filter((s) => s.trim() !== "");
    for (const k of ["image", "version"]) {
      if (fields[k].disabled) continue;
      const x = fields[k].value.trim();
      if (!x && required) {
        formErr.textContent = k === "image" ? "The image is required." : "The version is required.";
        fields[k].focus();
        return null;
      }
      out[k] = x;
    }
    if (!fields.args.disabled) out.args = lines(fields.args.value);
    if (!fields.devices.disabled) out.devices = lines(fields.devices.value).map((s) => s.trim());
    if (!fields.env.disabled) {
      const env = {};
      const envLines = fields.env.value.split("\n");
      for (let i = 0; i < envLines.length; i++) {
        const l = envLines[i].replace(/\r$/, "");
        if (!l.trim()) continue;
        const eq = l.indexOf("=");
        if (eq <= 0) {
          formErr.textContent = `Environment, line ${i + 1}: write KEY=VALUE.`;
          fields.env.focus();
          return null;
        }
        env[l.slice(0, eq).trim()] = l.slice(eq + 1);
      }
      out.env = env;
    }
    if (!secretsOdd) {
      try {
        Object.assign(out, secrets.get());
      } catch (e) {
        formErr.textContent = e.message;
        return null;
      }
    }
    return out;
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values();
    if (v && onSubmit) onSubmit(v);
  });

  return {
    form,
    fill,
    values,
    /** Shows why the values could not be written into the text. */
    error(message) {
      formErr.textContent = message;
    },
    get dirty() {
      return state.dirty;
    },
    set dirty(d) {
      state.dirty = d;
    },
  };
}

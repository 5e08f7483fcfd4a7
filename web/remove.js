// The Remove action of a unit's page: a dialog that names the unit and wants it typed before
// DELETE /units/NAME (which stops the unit, removes its container and its file, and records an
// `rm` revision). Shown only to a role the daemon would let remove the unit: operators and admins,
// and for a protected unit admins only; the daemon's refusal is shown if it refuses anyway.

import { h, replace, announce } from "./dom.js";
import { api, can, unitPath } from "./api.js";
import { errorDetails } from "./diag.js";

/** Whether the current role may remove `u` (policy.rs: Remove needs operator, admin if protected). */
export function mayRemove(u) {
  return can("operator") && (!u || !u.protected || can("admin"));
}

/** {button, dialog, paint(u)}: `paint` hides the button for a unit the role may not remove. */
export function removeAction(name, { signal }) {
  const button = h("button", { type: "button", class: "btn btn-ghost btn-stop", "data-action": "remove", hidden: true }, "Remove…");
  const typed = h("input", { id: "remove-confirm", type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "off", "aria-describedby": "remove-what" });
  const go = h("button", { type: "button", class: "btn btn-primary btn-danger", id: "remove-go", disabled: true }, `Remove ${name}`);
  const cancel = h("button", { type: "button", class: "btn btn-ghost", id: "remove-cancel" }, "Cancel");
  const out = h("div", { class: "remove-out", "aria-live": "polite" });
  const dialog = h(
    "dialog",
    { class: "card confirm-dialog", id: "remove-dialog", "aria-labelledby": "remove-h" },
    h("h2", { id: "remove-h" }, `Remove the unit ${name}?`),
    h("p", { id: "remove-what" }, "This stops ", h("code", {}, `containerctl@${name}.service`), ", removes its container and its file from /etc/containerctl/units. Its volumes' data stays, and its history keeps the revisions. To go on, type the unit's name: ", h("strong", {}, name), "."),
    h("div", { class: "field" }, h("label", { for: "remove-confirm" }, "Unit name"), typed),
    h("div", { class: "row" }, go, cancel),
    out,
  );
  let busy = false;
  typed.addEventListener("input", () => {
    go.disabled = busy || typed.value !== name;
  });
  button.addEventListener("click", () => {
    typed.value = "";
    go.disabled = true;
    replace(out);
    dialog.showModal();
    typed.focus();
  });
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => button.focus());
  go.addEventListener("click", async () => {
    if (typed.value !== name) return;
    busy = true;
    go.disabled = true;
    replace(out, h("p", { class: "job-progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), `Removing ${name}…`));
    try {
      await api("DELETE", unitPath(name), undefined, { signal });
      announce(`Removed ${name}`);
      dialog.close();
      location.hash = "#/units";
    } catch (e) {
      if (e.name === "AbortError") return;
      replace(out, h("div", { class: "card-err", role: "alert" }, h("h3", {}, `${name} was not removed`), ...errorDetails(e)));
    } finally {
      busy = false;
      go.disabled = typed.value !== name;
    }
  });
  return {
    button,
    dialog,
    paint(u) {
      button.hidden = !mayRemove(u);
    },
  };
}

// A plain <textarea> with a line-number gutter and line marks for diagnostics. Lines never wrap,
// so line N of the text is row N of the gutter. Tab moves focus as usual (no keyboard trap).

import { h, replace } from "./dom.js";

export function createEditor({ id, label, describedBy, text = "", onInput }) {
  const gutterInner = h("div", { class: "gutter-inner" });
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" }, gutterInner);
  const marks = h("div", { class: "marks", "aria-hidden": "true" });
  const textarea = h("textarea", {
    id,
    class: "code",
    wrap: "off",
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    "aria-label": label,
    "aria-describedby": describedBy,
  });
  textarea.value = text;
  const body = h("div", { class: "editor-body" }, marks, textarea);
  const el = h("div", { class: "editor" }, gutter, body);

  let lineCount = 0;
  let marked = new Map(); // line -> "error" | "warning"

  function lines() {
    return textarea.value.split("\n").length;
  }

  function renderGutter() {
    const n = lines();
    if (n !== lineCount) {
      replace(gutterInner);
      const frag = document.createDocumentFragment();
      for (let i = 1; i <= n; i++) frag.append(h("div", { class: "ln", "data-line": i }, String(i)));
      gutterInner.append(frag);
      lineCount = n;
    }
    for (const ln of gutterInner.children) {
      const kind = marked.get(Number(ln.dataset.line));
      ln.className = kind ? `ln ln-${kind}` : "ln";
      if (kind) ln.title = kind;
      else ln.removeAttribute("title");
    }
    replace(marks);
    for (const [line, kind] of marked) {
      if (line < 1 || line > n) continue;
      const m = h("div", { class: `mark mark-${kind}`, "data-line": line });
      m.style.setProperty("--line", String(line - 1));
      marks.append(m);
    }
    sync();
  }

  function sync() {
    const y = textarea.scrollTop;
    gutterInner.style.transform = `translateY(${-y}px)`;
    marks.style.transform = `translate(${-textarea.scrollLeft}px, ${-y}px)`;
  }

  textarea.addEventListener("scroll", sync);
  textarea.addEventListener("input", () => {
    renderGutter();
    if (onInput) onInput(textarea.value);
  });
  renderGutter();

  return {
    el,
    textarea,
    get text() {
      return textarea.value;
    },
    setText(t) {
      textarea.value = t;
      renderGutter();
    },
    /** marks: [{line, kind}] with kind "error" or "warning" (line 1-based; 0 = whole file). */
    mark(list) {
      marked = new Map();
      for (const { line, kind } of list) if (line > 0 && marked.get(line) !== "error") marked.set(line, kind);
      textarea.setAttribute("aria-invalid", [...marked.values()].includes("error") ? "true" : "false");
      renderGutter();
    },
    /** Puts the caret at line:column (1-based) and scrolls it into view. */
    goTo(line, column = 1) {
      const all = textarea.value.split("\n");
      let pos = 0;
      for (let i = 0; i < Math.min(line - 1, all.length); i++) pos += all[i].length + 1;
      const lineLen = (all[line - 1] || "").length;
      pos += Math.min(Math.max(column - 1, 0), lineLen);
      textarea.focus();
      textarea.setSelectionRange(pos, pos);
      const lh = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
      const top = (line - 1) * lh;
      if (top < textarea.scrollTop || top > textarea.scrollTop + textarea.clientHeight - lh * 2) {
        textarea.scrollTop = Math.max(0, top - textarea.clientHeight / 3);
      }
      sync();
    },
  };
}

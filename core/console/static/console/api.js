// The console's one way to the REST API (session cookie + CSRF header) and its one way to
// build DOM: text always goes in as text nodes, never as HTML.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
  /** Messages by field (`validation_errors`), `non_field_errors` and `detail` under "". */
  fieldMessages() {
    const out = {};
    const errors = this.body.validation_errors;
    if (errors && typeof errors === "object") {
      for (const [name, messages] of Object.entries(errors)) {
        const list = flatten(messages);
        out[name === "non_field_errors" ? "" : name] = list;
      }
    }
    if (!Object.keys(out).length) out[""] = [this.message];
    return out;
  }
}

function flatten(value) {
  if (Array.isArray(value)) return value.flatMap(flatten);
  if (value && typeof value === "object") return Object.values(value).flatMap(flatten);
  return [String(value)];
}

export async function api(method, url, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  if (response.status === 401) {
    location.assign(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, { detail: "Logged out" });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** h("a", {href, class, onclick}, "text", child...): an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export const main = () => document.getElementById("main");

export function formatDate(value) {
  if (!value) return "never";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function formatNumber(value) {
  return Number(value || 0).toLocaleString("en-US");
}

/** "1 task", "2,000 tasks". */
export function count(value, one, many = `${one}s`) {
  return `${formatNumber(value)} ${Number(value) === 1 ? one : many}`;
}

/** A page of a paginated list: prev/next and "page X of Y" into `nav`. */
export function pager(nav, page, pages, go) {
  replace(nav);
  if (pages <= 1) return;
  nav.append(
    h("button", { type: "button", disabled: page <= 1, onclick: () => go(page - 1) }, "← Previous"),
    h("span", { class: "muted page-of" }, `Page ${formatNumber(page)} of ${formatNumber(pages)}`),
    h("button", { type: "button", disabled: page >= pages, onclick: () => go(page + 1) }, "Next →"),
  );
}

/** Wire a <dialog>'s cancel buttons; return open/close helpers. */
export function dialog(el) {
  for (const button of el.querySelectorAll(".cancel")) button.addEventListener("click", () => el.close());
  return el;
}

// The storages panel of a project: every import and export storage with its status, last
// sync, counts and errors; add / edit through a form built from the type's layout
// (/api/storages/<type>/form), check connection, preview files, sync with live progress
// (polling the storage while it is queued or running), delete with confirmation.
import { ApiError, api, count, dialog, formatDate, formatNumber, h, replace } from "./api.js";

const POLL_MS = 700;
const ACTIVE = ["queued", "in_progress"];
const STATUS_LABELS = {
  initialized: "Never synced",
  queued: "Queued",
  in_progress: "Syncing",
  completed: "Completed",
  completed_with_errors: "Completed with errors",
  failed: "Failed",
};
const STORED_SECRET = "stored (leave empty to keep)";

const base = (exp, type) => `/api/storages/${exp ? "export/" : ""}${type}`;
const cardId = (exp, storage) => `storage-${exp ? "export" : "import"}-${storage.type}-${storage.id}`;

export function initStorages(projectId, onTasksChanged) {
  const lists = { false: document.getElementById("import-storages"), true: document.getElementById("export-storages") };
  const pollers = new Map();
  const typeCache = {};
  const formDialog = dialog(document.getElementById("storage-dialog"));
  const confirmDialog = document.getElementById("confirm-dialog");
  let lastTasksRefresh = 0;

  async function types(exp) {
    typeCache[exp] ??= api("GET", exp ? "/api/storages/export/types" : "/api/storages/types");
    return typeCache[exp];
  }

  async function load() {
    for (const exp of [false, true]) {
      let storages;
      try {
        storages = await api("GET", `/api/storages${exp ? "/export" : ""}?project=${projectId}`);
      } catch (e) {
        replace(lists[exp], h("p", { class: "error", role: "alert" }, `Could not load the storages: ${e.message}`));
        continue;
      }
      if (!storages.length) {
        replace(
          lists[exp],
          h(
            "div",
            { class: "empty" },
            exp
              ? h("p", {}, "No export storage yet: add one to write annotations to a bucket.")
              : h("p", {}, "No storage yet: connect a bucket to import its files as tasks."),
          ),
        );
        continue;
      }
      replace(lists[exp], storages.map((s) => card(s, exp)));
      for (const s of storages) if (ACTIVE.includes(s.status)) poll(s, exp);
    }
  }

  function progressFacts(s) {
    const meta = s.meta || {};
    const active = ACTIVE.includes(s.status);
    const started = Date.parse(meta.time_in_progress || "");
    let elapsed = null;
    if (active && s.status === "in_progress" && !Number.isNaN(started)) elapsed = Math.max(0, (Date.now() - started) / 1000);
    else if (!active && typeof meta.duration === "number") elapsed = meta.duration;
    const created = s.last_sync_count || 0;
    const facts = [
      ["Last sync", formatDate(s.last_sync), "last-sync"],
      [s.type && exp_(s) ? "Annotations exported" : "Tasks created", formatNumber(created), "created"],
    ];
    if (!exp_(s)) facts.push(["Already linked", formatNumber(meta.tasks_existed), "existed"]);
    if (elapsed !== null) {
      facts.push(["Elapsed", `${elapsed.toFixed(1)} s`, "elapsed"]);
      facts.push(["Rate", elapsed > 0 ? `${formatNumber(Math.round(created / elapsed))} /s` : "–", "rate"]);
    }
    return facts;
  }

  // Export storages carry `can_delete_objects`; import storages do not.
  function exp_(s) {
    return Object.prototype.hasOwnProperty.call(s, "can_delete_objects");
  }

  function errorsOf(s) {
    if (!s.traceback || !["failed", "completed_with_errors"].includes(s.status)) return null;
    const lines = s.traceback.split("\n").filter(Boolean);
    const items = lines.slice(0, 100).map((line) => {
      const cut = line.indexOf(": ");
      return cut > 0 && /^[a-z0-9+-]+:\/\/|^\//i.test(line)
        ? h("li", {}, h("code", { class: "error-key" }, line.slice(0, cut)), " ", h("span", {}, line.slice(cut + 2)))
        : h("li", {}, line);
    });
    return h(
      "div",
      { class: "errors", role: "alert" },
      h("p", {}, s.status === "failed" ? "The sync failed:" : `${count(lines.length, "object")} failed:`),
      h("ul", {}, items),
      lines.length > 100 ? h("p", { class: "muted" }, `… and ${formatNumber(lines.length - 100)} more`) : null,
    );
  }

  function card(s, exp) {
    const active = ACTIVE.includes(s.status);
    const name = s.title || `${s.type} #${s.id}`;
    const buttons = exp
      ? [
          h("button", { type: "button", class: "primary sync", disabled: active, onclick: () => sync(s, exp, {}) }, "Export all"),
          h("button", { type: "button", class: "sync-new", disabled: active, onclick: () => sync(s, exp, { save_only_new_annotations: true }) }, "Only new annotations"),
        ]
      : [h("button", { type: "button", class: "primary sync", disabled: active, onclick: () => sync(s, exp, {}) }, active ? "Syncing…" : "Sync")];
    return h(
      "article",
      { class: "card storage", id: cardId(exp, s), dataset: { status: s.status, type: s.type, id: s.id }, "aria-label": `${exp ? "Export" : "Import"} storage ${name}` },
      h(
        "div",
        { class: "storage-head" },
        h("h4", {}, name),
        h("span", { class: "type-tag" }, s.type),
        h("span", { class: `badge badge-${s.status}`, role: "status" }, STATUS_LABELS[s.status] || s.status),
      ),
      h("p", { class: "muted small location" }, location_(s)),
      h(
        "dl",
        { class: "facts" },
        progressFacts(s).map(([label, value, key]) => h("div", { dataset: { fact: key } }, h("dt", {}, label), h("dd", {}, value))),
      ),
      s.status === "queued" && s.meta && s.meta.waiting ? h("p", { class: "waiting", role: "status" }, s.meta.waiting) : null,
      errorsOf(s),
      h(
        "div",
        { class: "actions" },
        buttons,
        h("button", { type: "button", class: "edit", onclick: () => openForm(exp, s) }, "Edit"),
        h("button", { type: "button", class: "danger delete", onclick: () => remove(s, exp) }, "Delete"),
      ),
    );
  }

  function location_(s) {
    const where = s.bucket || s.container || s.path || s.host || "";
    const prefix = s.prefix ? `/${s.prefix}` : "";
    return `${s.type}: ${where}${prefix}`;
  }

  function update(s, exp) {
    const old = document.getElementById(cardId(exp, s));
    if (!old) return;
    const focused = old.contains(document.activeElement) ? document.activeElement.className : null;
    const fresh = card(s, exp);
    old.replaceWith(fresh);
    if (focused) fresh.querySelector(`.${focused.split(" ").pop()}`)?.focus();
  }

  function poll(s, exp) {
    const key = cardId(exp, s);
    if (pollers.has(key)) return;
    const tick = async () => {
      let fresh;
      try {
        fresh = await api("GET", `${base(exp, s.type)}/${s.id}`);
      } catch (e) {
        pollers.delete(key);
        if (e instanceof ApiError && e.status === 404) load();
        return;
      }
      update(fresh, exp);
      const active = ACTIVE.includes(fresh.status);
      if (!exp && (!active || Date.now() - lastTasksRefresh > 3000)) {
        lastTasksRefresh = Date.now();
        onTasksChanged();
      }
      if (active) pollers.set(key, setTimeout(tick, POLL_MS));
      else pollers.delete(key);
    };
    pollers.set(key, setTimeout(tick, POLL_MS));
  }

  async function sync(s, exp, body) {
    try {
      const fresh = await api("POST", `${base(exp, s.type)}/${s.id}/sync`, body);
      update(fresh, exp);
      document.getElementById(cardId(exp, fresh))?.querySelector(".edit")?.focus();
      if (ACTIVE.includes(fresh.status)) poll(fresh, exp);
      else if (!exp) onTasksChanged();
    } catch (e) {
      alertIn(document.getElementById(cardId(exp, s)), e.message);
    }
  }

  function alertIn(el, text) {
    if (!el) return;
    el.querySelector(".sync-error")?.remove();
    el.append(h("p", { class: "error sync-error", role: "alert" }, text));
  }

  function remove(s, exp) {
    const name = s.title || `${s.type} #${s.id}`;
    document.getElementById("confirm-title").textContent = `Delete the storage “${name}”?`;
    document.getElementById("confirm-text").textContent = exp
      ? "The annotations already exported stay in the bucket; only this connection is removed."
      : `The tasks it imported stay in the project (${formatNumber(s.last_sync_count || 0)} from its last sync); only this connection is removed.`;
    confirmDialog.returnValue = "";
    confirmDialog.showModal();
    confirmDialog.addEventListener(
      "close",
      async () => {
        if (confirmDialog.returnValue !== "ok") return;
        try {
          await api("DELETE", `${base(exp, s.type)}/${s.id}`);
        } catch (e) {
          alertIn(document.getElementById(cardId(exp, s)), e.message);
          return;
        }
        load();
      },
      { once: true },
    );
  }

  // --- the add / edit form ---------------------------------------------------------------
  const form = document.getElementById("storage-form");
  const typeSelect = document.getElementById("storage-type");
  const fieldsEl = document.getElementById("storage-fields");
  const messageEl = document.getElementById("storage-message");
  const previewEl = document.getElementById("storage-preview");
  const filesButton = document.getElementById("storage-files");
  let editing = null; // {exp, storage} or {exp}
  let layout = [];

  async function openForm(exp, storage = null) {
    editing = { exp, storage };
    document.getElementById("storage-dialog-title").textContent = storage
      ? `Edit ${exp ? "export" : "import"} storage “${storage.title || storage.type}”`
      : exp
        ? "Add an export storage"
        : "Connect a storage";
    const list = await types(exp);
    replace(typeSelect, list.map((t) => h("option", { value: t.name }, t.title)));
    typeSelect.value = storage ? storage.type : list[0]?.name;
    typeSelect.disabled = Boolean(storage);
    filesButton.hidden = exp;
    await buildFields();
    formDialog.showModal();
    (storage ? fieldsEl.querySelector("input") : typeSelect).focus();
  }

  async function buildFields() {
    const { exp, storage } = editing;
    message("");
    replace(previewEl);
    replace(fieldsEl, h("p", { class: "muted" }, "Loading the form…"));
    layout = await api("GET", `${base(exp, typeSelect.value)}/form`);
    replace(
      fieldsEl,
      layout.map((group) =>
        h(
          "div",
          { class: `field-group cols-${group.columnCount}` },
          group.fields.map((field) => fieldInput(field, storage)),
        ),
      ),
    );
  }

  function fieldInput(field, storage) {
    const id = `sf-${field.name}`;
    const current = storage ? storage[field.name] : field.default;
    const describedBy = `sf-err-${field.name}${field.help ? ` sf-help-${field.name}` : ""}`;
    let input;
    if (field.type === "toggle") {
      input = h("input", { id, name: field.name, type: "checkbox", checked: Boolean(current), "aria-describedby": describedBy });
      return h(
        "div",
        { class: "field toggle" },
        h("label", { for: id }, input, " ", field.label),
        field.help ? h("p", { class: "help", id: `sf-help-${field.name}` }, field.help) : null,
        h("p", { class: "field-error", id: `sf-err-${field.name}` }),
      );
    }
    const attrs = { id, name: field.name, "aria-describedby": describedBy, required: field.required && !(storage && field.type === "password") };
    if (field.type === "password") {
      // Secrets are write-only: never shown back; empty keeps the stored one.
      input = h("input", { ...attrs, type: "password", autocomplete: "new-password", placeholder: storage ? STORED_SECRET : "" });
    } else if (field.type === "number") {
      input = h("input", { ...attrs, type: "number", value: current ?? "" });
    } else {
      input = h("input", { ...attrs, type: "text", value: current ?? "", autocomplete: "off" });
    }
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, field.label, field.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
      input,
      field.help ? h("p", { class: "help", id: `sf-help-${field.name}` }, field.help) : null,
      h("p", { class: "field-error", id: `sf-err-${field.name}` }),
    );
  }

  // The body of validate / files / save: on create, the fields filled in; on edit, only the
  // fields changed (secrets only when typed: an empty one keeps the stored secret).
  function body(withId) {
    const { storage } = editing;
    const out = { project: projectId }; // validate of local files needs it, also on edit
    const same = (a, b) => (a === null || a === undefined ? "" : String(a)) === (b === null || b === undefined ? "" : String(b));
    for (const group of layout) {
      for (const field of group.fields) {
        const el = form.elements.namedItem(field.name);
        if (!el) continue;
        let value;
        if (field.type === "toggle") value = el.checked;
        else if (field.type === "password") {
          if (!el.value) continue;
          value = el.value;
        } else if (field.type === "number") value = el.value === "" ? null : Number(el.value);
        else value = el.value;
        if (storage ? same(storage[field.name], value) && field.type !== "password" : value === null || value === "") continue;
        out[field.name] = value;
      }
    }
    if (withId && storage) out.id = storage.id;
    return out;
  }

  function message(text, kind = "error") {
    messageEl.textContent = text;
    messageEl.className = `form-message ${text ? kind : ""}`;
  }

  // A failed connection check is one message for the whole configuration (non_field_errors,
  // as in Label Studio); put it next to the field it names, else above the buttons.
  const CONCERNS = [
    [/credential|access key|secret|signature|password|auth/i, (f) => f.type === "password"],
    [/bucket|container/i, (f) => ["bucket", "container"].includes(f.name)],
    [/prefix|no objects?|is empty/i, (f) => f.name === "prefix"],
    [/endpoint|cannot reach|region/i, (f) => /endpoint|region/.test(f.name)],
    [/host|port|connect/i, (f) => ["host", "port"].includes(f.name)],
    [/path|director/i, (f) => f.name === "path"],
    [/regex|pattern/i, (f) => f.name === "regex_filter"],
  ];

  function fieldConcerned(text) {
    const fields = layout.flatMap((group) => group.fields);
    for (const [pattern, matches] of CONCERNS) {
      if (!pattern.test(text)) continue;
      const field = fields.find(matches);
      if (field) return field.name;
    }
    return null;
  }

  function showErrors(error) {
    for (const el of fieldsEl.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of fieldsEl.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    if (!error) return;
    const messages = error instanceof ApiError ? error.fieldMessages() : { "": [error.message] };
    const general = [];
    let first = null;
    for (const [name, list] of Object.entries(messages)) {
      const slot = name && document.getElementById(`sf-err-${name}`);
      if (slot) {
        slot.textContent = list.join(" ");
        const input = document.getElementById(`sf-${name}`);
        input?.setAttribute("aria-invalid", "true");
        first ??= input;
      } else if (!name && list.length === 1 && fieldConcerned(list[0])) {
        const concerned = fieldConcerned(list[0]);
        document.getElementById(`sf-err-${concerned}`).textContent = list[0];
        const input = document.getElementById(`sf-${concerned}`);
        input?.setAttribute("aria-invalid", "true");
        first ??= input;
      } else general.push(...(name ? list.map((m) => `${name}: ${m}`) : list));
    }
    message(general.join(" ") || "The check failed: see the field marked below.");
    first?.focus();
  }

  async function run(button, action) {
    button.disabled = true;
    showErrors(null);
    message("Working…", "muted");
    try {
      await action();
    } catch (e) {
      showErrors(e);
    } finally {
      button.disabled = false;
    }
  }

  typeSelect.addEventListener("change", () => buildFields());
  document.getElementById("storage-check").addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      replace(previewEl);
      await api("POST", `${base(editing.exp, typeSelect.value)}/validate`, body(true));
      message("Connection OK: the storage answered.", "ok");
    }),
  );
  filesButton.addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      replace(previewEl);
      const { files } = await api("POST", `${base(false, typeSelect.value)}/files`, { ...body(true), limit: 10 });
      message("");
      if (!files.length) {
        replace(previewEl, h("p", { class: "empty" }, "No object matches: a sync would import nothing (check the prefix and the regex filter)."));
        return;
      }
      replace(
        previewEl,
        h("p", {}, `The first ${files.length} files a sync would import:`),
        h(
          "table",
          { class: "files" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Modified"))),
          h(
            "tbody",
            {},
            files.map((f) => h("tr", {}, h("td", {}, h("code", {}, f.key)), h("td", { class: "num" }, f.size === null ? "–" : formatNumber(f.size)), h("td", {}, formatDate(f.last_modified)))),
          ),
        ),
      );
      previewEl.scrollIntoView({ block: "nearest" });
    }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(document.getElementById("storage-save"), async () => {
      const { exp, storage } = editing;
      if (storage) await api("PATCH", `${base(exp, storage.type)}/${storage.id}`, body(false));
      else await api("POST", base(exp, typeSelect.value), body(false));
      formDialog.close();
      await load();
    });
  });
  document.getElementById("add-import").addEventListener("click", () => openForm(false));
  document.getElementById("add-export").addEventListener("click", () => openForm(true));
  load();
}

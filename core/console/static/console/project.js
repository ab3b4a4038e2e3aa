// A project's page: its storages (storages.js) and its tasks, one page at a time through the
// API (?page=&page_size=), so a project of 100,000 tasks loads one page, never all of them.
import { ApiError, api, count, formatNumber, h, main, pager, replace } from "./api.js";
import { configKinds, preview } from "./preview.js";
import { initStorages } from "./storages.js";

const projectId = Number(main().dataset.projectid);
const PAGE_SIZE = 20;
const tasksEl = document.getElementById("tasks");
const totalEl = document.getElementById("tasks-total");
const pagerEl = document.getElementById("tasks-pager");
let kinds = {};
let currentPage = Number(new URLSearchParams(location.search).get("page")) || 1;

async function loadProject() {
  try {
    const project = await api("GET", `/api/projects/${projectId}/`);
    document.getElementById("project-title").textContent = project.title;
    document.title = `${project.title} · Storage console`;
    const summary = [project.description, `data key: $${project.data_key || Object.keys(configKinds(project.label_config))[0] || "?"}`];
    document.getElementById("project-summary").textContent = summary.filter(Boolean).join(" · ");
    kinds = configKinds(project.label_config);
    return true;
  } catch (e) {
    const text = e instanceof ApiError && e.status === 404 ? "Project not found (or not in your organizations)." : `Could not load the project: ${e.message}`;
    replace(main(), h("h1", {}, "Project not found"), h("p", { class: "error", role: "alert", id: "not-found" }, text), h("p", {}, h("a", { href: "/" }, "Back to the projects")));
    return false;
  }
}

export async function loadTasks(page = currentPage) {
  let data;
  try {
    data = await api("GET", `/api/tasks/?project=${projectId}&page=${page}&page_size=${PAGE_SIZE}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && page > 1) return loadTasks(1); // past the end (tasks were deleted)
    replace(tasksEl, h("p", { class: "error", role: "alert" }, `Could not load the tasks: ${e.message}`));
    return;
  }
  currentPage = page;
  const url = new URL(location.href);
  if (page > 1) url.searchParams.set("page", page);
  else url.searchParams.delete("page");
  history.replaceState(null, "", url);
  totalEl.textContent = `${count(data.total, "task")} · ${count(data.total_annotations, "annotation")}`;
  totalEl.dataset.total = data.total;
  if (!data.total) {
    replace(tasksEl, h("div", { class: "empty" }, h("p", {}, "No task yet: connect a bucket and sync it, or import tasks through the API.")));
    replace(pagerEl);
    return;
  }
  const rows = data.tasks.map((task) =>
    h(
      "tr",
      { dataset: { task: task.id } },
      h("td", {}, h("a", { href: `/projects/${projectId}/tasks/${task.id}/`, "aria-label": `Open task ${task.id}` }, `#${task.id}`)),
      h(
        "td",
        { class: "data-cell" },
        Object.entries(task.data || {}).map(([key, value]) => h("div", { class: "datum" }, h("span", { class: "key" }, key), preview(key, value, kinds, true))),
      ),
      h("td", { class: "num" }, formatNumber(task.total_annotations)),
    ),
  );
  replace(
    tasksEl,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "tasks" },
        h("caption", { class: "visually-hidden" }, "Tasks of this project"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Task"), h("th", { scope: "col" }, "Data"), h("th", { scope: "col", class: "num" }, "Annotations"))),
        h("tbody", {}, rows),
      ),
    ),
  );
  pager(pagerEl, page, Math.ceil(data.total / PAGE_SIZE), loadTasks);
}

if (await loadProject()) {
  loadTasks();
  initStorages(projectId, () => loadTasks());
}

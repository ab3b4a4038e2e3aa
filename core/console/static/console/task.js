// One task: every data value at full size (images, players that seek, text escaped, HTML
// sandboxed), its annotations count and meta.
import { ApiError, api, formatDate, formatNumber, h, main, replace } from "./api.js";
import { configKinds, originalUri, preview } from "./preview.js";

const { projectid: projectId, taskid: taskId } = main().dataset;
const el = document.getElementById("task");

async function load() {
  let task, project;
  try {
    [task, project] = await Promise.all([api("GET", `/api/tasks/${taskId}/`), api("GET", `/api/projects/${projectId}/`)]);
    if (String(task.project) !== String(projectId)) throw new ApiError(404, { detail: "Not found." });
  } catch (e) {
    replace(el, h("p", { class: "error", role: "alert", id: "not-found" }, e instanceof ApiError && e.status === 404 ? "Task not found (or not in your organizations)." : `Could not load the task: ${e.message}`));
    return;
  }
  const link = document.getElementById("project-link");
  link.textContent = project.title;
  document.getElementById("task-title").textContent = `Task #${task.id}`;
  document.title = `Task #${task.id} · ${project.title}`;
  const kinds = configKinds(project.label_config);
  replace(
    el,
    h(
      "dl",
      { class: "facts" },
      h("div", {}, h("dt", {}, "Annotations"), h("dd", {}, formatNumber(task.total_annotations))),
      h("div", {}, h("dt", {}, "Predictions"), h("dd", {}, formatNumber(task.total_predictions))),
      h("div", {}, h("dt", {}, "Created"), h("dd", {}, formatDate(task.created_at))),
    ),
    Object.entries(task.data || {}).map(([key, value]) =>
      h(
        "section",
        { class: "card datum-full" },
        h("h2", {}, key),
        typeof value === "string" && value !== originalUri(value) ? h("p", { class: "muted small" }, h("code", {}, originalUri(value))) : null,
        preview(key, value, kinds, false),
      ),
    ),
    task.meta && Object.keys(task.meta).length ? h("section", { class: "card" }, h("h2", {}, "Meta"), h("pre", {}, JSON.stringify(task.meta, null, 2))) : null,
  );
}
load();

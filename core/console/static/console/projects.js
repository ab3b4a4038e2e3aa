// The projects page: the user's projects (paginated) and "New project".
import { ApiError, api, count, dialog, formatDate, h, pager, replace } from "./api.js";

const PAGE_SIZE = 30;
const CONFIGS = {
  image: '<View>\n  <Image name="image" value="$image"/>\n  <Choices name="choice" toName="image"><Choice value="yes"/><Choice value="no"/></Choices>\n</View>',
  text: '<View>\n  <Text name="text" value="$text"/>\n  <Choices name="choice" toName="text"><Choice value="yes"/><Choice value="no"/></Choices>\n</View>',
  html: '<View>\n  <HyperText name="html" value="$html"/>\n  <Choices name="choice" toName="html"><Choice value="yes"/><Choice value="no"/></Choices>\n</View>',
  audio: '<View>\n  <Audio name="audio" value="$audio"/>\n  <Choices name="choice" toName="audio"><Choice value="yes"/><Choice value="no"/></Choices>\n</View>',
  video: '<View>\n  <Video name="video" value="$video"/>\n  <Choices name="choice" toName="video"><Choice value="yes"/><Choice value="no"/></Choices>\n</View>',
};

const list = document.getElementById("projects");
const nav = document.getElementById("projects-pager");
const projectDialog = dialog(document.getElementById("project-dialog"));
const form = document.getElementById("project-form");

async function load(page = 1) {
  let data;
  try {
    data = await api("GET", `/api/projects/?page=${page}&page_size=${PAGE_SIZE}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && page > 1) return load(1);
    replace(list, h("p", { class: "error", role: "alert" }, `Could not load the projects: ${e.message}`));
    return;
  }
  if (!data.count) {
    replace(
      list,
      h(
        "div",
        { class: "empty" },
        h("p", {}, "No project yet: create one, then connect a bucket to it."),
        h("button", { type: "button", class: "primary", onclick: openDialog }, "Create a project"),
      ),
    );
    return;
  }
  replace(
    list,
    h(
      "ul",
      { class: "project-list" },
      data.results.map((p) =>
        h(
          "li",
          { class: "card project-card" },
          h("a", { href: `/projects/${p.id}/`, class: "project-link" }, p.title),
          p.description ? h("p", { class: "muted" }, p.description) : null,
          h(
            "p",
            { class: "muted small" },
            `${count(p.task_number, "task")} · ${count(p.total_annotations_number, "annotation")} · created ${formatDate(p.created_at)}`,
          ),
        ),
      ),
    ),
  );
  pager(nav, page, Math.ceil(data.count / PAGE_SIZE), load);
}

function openDialog() {
  form.reset();
  form.elements.label_config.value = CONFIGS.image;
  showErrors({});
  projectDialog.showModal();
  form.elements.title.focus();
}

function showErrors(messages) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  const general = form.querySelector(".form-error");
  general.hidden = true;
  const rest = [];
  for (const [name, list] of Object.entries(messages)) {
    const slot = document.getElementById(`err-${name}`);
    if (slot) slot.textContent = list.join(" ");
    else rest.push(...(name ? list.map((m) => `${name}: ${m}`) : list));
  }
  if (rest.length) {
    general.textContent = rest.join(" ");
    general.hidden = false;
  }
}

form.elements.kind.addEventListener("change", () => {
  if (CONFIGS[form.elements.kind.value]) form.elements.label_config.value = CONFIGS[form.elements.kind.value];
});
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { title: form.elements.title.value.trim(), description: form.elements.description.value, label_config: form.elements.label_config.value };
  try {
    const project = await api("POST", "/api/projects/", body);
    location.assign(`/projects/${project.id}/`);
  } catch (e) {
    showErrors(e instanceof ApiError ? e.fieldMessages() : { "": [e.message] });
  }
});
document.getElementById("new-project").addEventListener("click", openDialog);
load();

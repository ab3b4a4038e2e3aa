"""Label Studio's task endpoints beside the data manager's list: `GET/POST /api/projects/<id>/tasks`
(a plain list, storage URIs as stored; one task created) and `POST /api/tasks/` (one task in
the project the body names). Shapes and status codes as Label Studio 1.23.2 answers them."""

import json

import pytest

from tasks.models import Task
from tests.conftest import create_project
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, put, sync

pytestmark = pytest.mark.django_db

# The keys of Label Studio's answer to a task creation, and of an item of its project task list.
CREATED_KEYS = {
    "id",
    "data",
    "meta",
    "created_at",
    "updated_at",
    "is_labeled",
    "overlap",
    "inner_id",
    "total_annotations",
    "cancelled_annotations",
    "total_predictions",
    "comment_count",
    "unresolved_comment_count",
    "last_comment_updated_at",
    "project",
    "updated_by",
    "file_upload",
    "comment_authors",
}
LISTED_KEYS = CREATED_KEYS | {"annotations", "predictions"}


def field_errors(response, status=400):
    """The messages by field of an error answer, whichever envelope the API uses: DRF's
    `{"field": [...]}` or Label Studio's `{"validation_errors": {"field": [...]}, ...}`."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    return body["validation_errors"] if isinstance(body.get("validation_errors"), dict) else body


def create_in_project(client, project, body, **kwargs):
    return client.post(f"/api/projects/{project.id}/tasks", body, format="json", **kwargs)


def create_in_tasks(client, body):
    return client.post("/api/tasks/", body, format="json")


def listing(client, project, **params):
    return client.get(f"/api/projects/{project.id}/tasks", params)


# --- creating one task ------------------------------------------------------------------------
def test_create_a_task_in_a_project_answers_201_with_label_studio_fields(alice, project):
    response = create_in_project(alice, project, {"data": {"image": "http://example.com/1.jpg"}, "meta": {"m": 1}})
    assert response.status_code == 201, response.content
    task = response.json()
    assert set(task) == CREATED_KEYS
    assert task["data"] == {"image": "http://example.com/1.jpg"} and task["meta"] == {"m": 1}
    assert task["project"] == project.id and task["inner_id"] == 1 and task["overlap"] == 1
    assert (task["is_labeled"], task["total_annotations"], task["total_predictions"]) == (False, 0, 0)
    assert (task["comment_count"], task["file_upload"], task["comment_authors"]) == (0, None, [])
    stored = Task.objects.get(pk=task["id"])
    assert stored.project == project and stored.data == task["data"] and stored.meta == {"m": 1}
    # without meta, and a second task gets the next inner_id
    second = create_in_project(alice, project, {"data": {"image": "s3:/"}})
    assert second.status_code == 201 and second.json()["meta"] == {} and second.json()["inner_id"] == 2


def test_create_a_task_through_the_task_list_names_its_project_in_the_body(alice, project):
    response = create_in_tasks(alice, {"project": project.id, "data": {"text": "hello"}})
    assert response.status_code == 201, response.content
    task = response.json()
    assert set(task) == CREATED_KEYS and task["project"] == project.id and task["data"] == {"text": "hello"}
    assert list(project.tasks.values_list("id", flat=True)) == [task["id"]]
    # it is then served like every task
    assert alice.get(f"/api/tasks/{task['id']}/").json()["data"] == {"text": "hello"}


def test_a_created_task_keeps_storage_uris_as_stored_in_the_answer(alice, project, s3_server, s3_bucket, settings):
    settings.SSRF_PROTECTION_ENABLED = False
    put(s3_server, s3_bucket, "a.jpg", b"x")
    create_storage(alice, project, s3_config(s3_server, s3_bucket, use_blob_urls=True))
    uri = f"s3://{s3_bucket}/a.jpg"
    created = create_in_project(alice, project, {"data": {"image": uri}}).json()
    assert created["data"] == {"image": uri}
    assert create_in_tasks(alice, {"project": project.id, "data": {"image": uri}}).json()["data"] == {"image": uri}
    # the task detail resolves it, as before
    assert "/resolve/?fileuri=" in alice.get(f"/api/tasks/{created['id']}/").json()["data"]["image"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"image_url": "no data wrapper"}, "data"),  # not taken as flat data, as in Label Studio
        ([{"data": {"image_url": "x"}}], "non_field_errors"),
        ({"data": ["a list"]}, "data"),
        ({"data": "text"}, "data"),
        ({"data": None}, "data"),
        ({"data": {"x": 1}, "meta": [1]}, "meta"),
    ],
)
def test_a_body_that_is_not_one_task_is_a_400_naming_the_field(alice, project, body, field):
    assert field in field_errors(create_in_project(alice, project, body))
    assert field in field_errors(
        create_in_tasks(alice, body if isinstance(body, list) else {**body, "project": project.id})
    )
    assert project.tasks.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"data": {"x": 1}}, "project"),
        ({"project": None, "data": {"x": 1}}, "project"),
        ({"project": "abc", "data": {"x": 1}}, "project"),
        ({"project": True, "data": {"x": 1}}, "project"),
        ({"project": 10**30, "data": {"x": 1}}, "project"),
    ],
)
def test_the_task_list_needs_a_project_id_in_the_body(alice, project, body, field):
    assert field in field_errors(create_in_tasks(alice, body))
    assert Task.objects.count() == 0


def test_the_task_list_names_both_missing_fields(alice):
    assert {"project", "data"} <= set(field_errors(create_in_tasks(alice, {})))


def nested(depth, leaf=1):
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"data": {"text": "a\x00b"}}, "data", "data.text contains a NUL character"),
        ({"data": {"x": 1}, "meta": {"k\x00": 1}}, "meta", "NUL character"),
        ({"data": {"text": "\ud800"}}, "data", "lone surrogate"),
        ({"data": {"x": 1}, "meta": {"m": "\udc00"}}, "meta", "lone surrogate"),
        ({"data": nested(150)}, "data", "nests deeper than 100 levels"),
        ({"data": {"x": 1}, "meta": nested(150)}, "meta", "nests deeper than 100 levels"),
    ],
)
def test_task_data_that_cannot_be_stored_is_refused_as_on_import(alice, project, body, field, message):
    """The same checks as an imported task's (tasks.importing.parse_task), on both endpoints.
    Bodies are sent as JSON text: lone surrogates travel as `\\ud800` escapes."""

    def post(path, value):
        return alice.post(path, json.dumps(value), content_type="application/json")

    for response in (
        post(f"/api/projects/{project.id}/tasks", body),
        post("/api/tasks/", {**body, "project": project.id}),
    ):
        errors = field_errors(response)
        assert message in " ".join(errors[field]), errors
    imported = post(f"/api/projects/{project.id}/import", [body])  # the import refuses it too
    assert imported.status_code == 400 and message in json.dumps(imported.json()), imported.content
    assert project.tasks.count() == 0


def test_numbers_beyond_a_double_are_refused(alice, project):
    body = '{"data": {"x": 1e400}}'
    response = alice.post(f"/api/projects/{project.id}/tasks", body, content_type="application/json")
    assert "data" in field_errors(response)
    assert project.tasks.count() == 0


def test_annotations_in_the_body_are_not_created(alice, project):
    """As in Label Studio: one task is created from `data` and `meta`; annotations are made
    through the annotation endpoints (or an import)."""
    body = {"data": {"x": 1}, "annotations": [{"result": []}], "predictions": [{"result": []}]}
    task = create_in_project(alice, project, body).json()
    assert (task["total_annotations"], task["total_predictions"], task["is_labeled"]) == (0, 0, False)
    assert not Task.objects.get(pk=task["id"]).annotations.exists()


# --- permissions ----------------------------------------------------------------------------------
def test_other_organizations_get_404_and_create_nothing(alice, bob, project):
    create_in_project(alice, project, {"data": {"n": 1}})
    assert bob.get(f"/api/projects/{project.id}/tasks").status_code == 404
    assert create_in_project(bob, project, {"data": {"n": 2}}).status_code == 404
    assert create_in_project(bob, project, {"no": "data"}).status_code == 404  # the project first
    assert create_in_tasks(bob, {"project": project.id, "data": {"n": 2}}).status_code == 404
    assert create_in_tasks(alice, {"project": 999999999, "data": {"n": 2}}).status_code == 404
    assert alice.get("/api/projects/999999999/tasks").status_code == 404
    assert list(project.tasks.values_list("data", flat=True)) == [{"n": 1}]


def test_anonymous_calls_get_401(client, project):
    assert client.get(f"/api/projects/{project.id}/tasks").status_code == 401
    assert (
        client.post("/api/tasks/", {"project": project.id, "data": {}}, content_type="application/json").status_code
        == 401
    )


# --- the project task list --------------------------------------------------------------------------
def test_an_empty_project_answers_404_as_label_studio_does(alice, project):
    assert listing(alice, project).status_code == 404
    assert alice.get(f"/api/projects/{project.id}/tasks/").status_code == 404


def test_the_list_is_a_plain_list_newest_first_with_label_studio_fields(alice, project):
    ids = [create_in_project(alice, project, {"data": {"n": i}}).json()["id"] for i in range(3)]
    alice.post(f"/api/tasks/{ids[0]}/annotations/", {"result": [{"v": 1}]}, format="json")
    assert alice.patch(f"/api/tasks/{ids[0]}/", {"meta": {"edited": True}}, format="json").status_code == 200
    response = listing(alice, project)
    assert response.status_code == 200
    tasks = response.json()
    assert isinstance(tasks, list) and all(set(task) == LISTED_KEYS for task in tasks)
    assert [task["id"] for task in tasks] == [ids[0], ids[2], ids[1]]  # the most recently updated first
    labeled = tasks[0]
    assert labeled["total_annotations"] == 1 and labeled["is_labeled"] is True
    assert [a["result"] for a in labeled["annotations"]] == [[{"v": 1}]] and labeled["predictions"] == []


def test_the_list_pages_with_page_and_page_size(alice, project):
    alice.post(f"/api/projects/{project.id}/import", [{"n": i} for i in range(5)], format="json")
    newest_first = [task["data"]["n"] for task in listing(alice, project).json()]
    assert sorted(newest_first) == [0, 1, 2, 3, 4]
    pages = [[t["data"]["n"] for t in listing(alice, project, page=p, page_size=2).json()] for p in (1, 2, 3)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert listing(alice, project, page=4, page_size=2).status_code == 404  # past the end
    assert listing(alice, project, page=0).status_code == 404
    assert listing(alice, project, page=10**30).status_code == 404
    assert len(listing(alice, project, page_size=-1).json()) == 5  # Label Studio's "all"
    assert len(listing(alice, project, page_size=10**9).json()) == 5
    assert "page" in field_errors(listing(alice, project, page="one"))
    assert "page_size" in field_errors(listing(alice, project, page_size="1.5"))


def test_the_default_page_holds_50_tasks(alice, project, django_assert_max_num_queries):
    alice.post(f"/api/projects/{project.id}/import", [{"n": i} for i in range(51)], format="json")
    with django_assert_max_num_queries(8):  # not one per task: annotations, predictions prefetched
        assert len(listing(alice, project).json()) == 50
    assert len(listing(alice, project, page=2).json()) == 1


def test_the_list_keeps_storage_uris_as_stored(alice, project, s3_server, s3_bucket, settings):
    """As in Label Studio: the project task list shows `s3://...`, the task detail and the data
    manager list serve resolve links."""
    settings.SSRF_PROTECTION_ENABLED = False
    put(s3_server, s3_bucket, "image1.jpg", b"jpeg")
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, use_blob_urls=True))
    assert sync(alice, storage)["status"] == "completed"
    uri = f"s3://{s3_bucket}/image1.jpg"
    (listed,) = listing(alice, project).json()
    assert listed["data"] == {"image": uri}
    resolved = alice.get(f"/api/tasks/{listed['id']}/").json()["data"]["image"]
    assert resolved.startswith(f"/tasks/{listed['id']}/resolve/?fileuri=")
    assert alice.get(resolved).status_code in (200, 303)


def test_projects_of_the_same_organization_do_not_mix(alice, project):
    other = create_project(alice, "Other")
    create_in_project(alice, project, {"data": {"p": 1}})
    create_in_tasks(alice, {"project": other.id, "data": {"p": 2}})
    assert [t["data"] for t in listing(alice, project).json()] == [{"p": 1}]
    assert [t["data"] for t in listing(alice, other).json()] == [{"p": 2}]

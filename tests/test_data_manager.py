"""Label Studio's data manager endpoints as this service keeps them: views
(`/api/dm/views`), a view's task list (`GET /api/tasks/?view=`) and the
`delete_tasks_annotations` action (`POST /api/dm/actions`)."""

import pytest

from tasks.models import Annotation, Task
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, put, sync
from tests.test_s3_export import objects

pytestmark = pytest.mark.django_db


def import_tasks(client, project, tasks):
    assert client.post(f"/api/projects/{project.id}/import", tasks, format="json").status_code == 201


def make_view(client, project, body=None, **query):
    return client.post(f"/api/dm/views?project={project.id}", body if body is not None else {}, format="json")


def test_view_create_answers_label_studios_shape(alice, project):
    response = make_view(alice, project, {"data": {"filters": {}, "ordering": ["tasks:id"]}, "project": project.id})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "data", "order", "user", "project"}
    assert body["data"] == {"ordering": ["tasks:id"]}  # an empty filters is dropped, as in Label Studio
    assert (body["order"], body["user"], body["project"]) == (0, alice.user.id, project.id)
    # the project as a string in the body, none in the query
    other = alice.post("/api/dm/views", {"project": str(project.id)}, format="json")
    assert other.status_code == 201 and other.json()["data"] == {}
    assert [v["id"] for v in alice.get(f"/api/dm/views?project={project.id}").json()] == [
        body["id"],
        other.json()["id"],
    ]
    assert alice.post("/api/dm/views", {}, format="json").status_code == 400


def test_views_are_isolated_by_organization(alice, bob, project, bob_project):
    assert make_view(alice, bob_project).status_code == 404
    view = make_view(bob, bob_project).json()
    assert alice.get(f"/api/dm/views/{view['id']}").status_code == 404
    assert alice.get(f"/api/tasks/?view={view['id']}").status_code == 404
    assert alice.patch(f"/api/dm/views/{view['id']}", {"data": {}}, format="json").status_code == 404
    assert alice.delete(f"/api/dm/views/{view['id']}").status_code == 404
    assert alice.get("/api/dm/views").json() == []
    assert bob.get(f"/api/dm/views/{view['id']}").status_code == 200


def test_view_task_list_has_the_data_manager_shape(alice, project):
    import_tasks(alice, project, [{"image": "http://x/2.jpg"}, {"image": "http://x/1.jpg"}])
    view = make_view(alice, project, {"data": {"ordering": ["-tasks:id"]}}).json()
    body = alice.get(f"/api/tasks/?view={view['id']}&fields=all").json()
    assert (body["total"], body["total_annotations"], body["total_predictions"]) == (2, 0, 0)
    assert [t["data"]["image"] for t in body["tasks"]] == ["http://x/1.jpg", "http://x/2.jpg"]
    first = body["tasks"][0]
    assert first["project"] == project.id and first["storage_filename"] is None
    assert first["annotators"] == [] and first["drafts"] == []
    assert alice.get(f"/api/tasks/?view={view['id']}&project={project.id + 1}").status_code == 400
    assert alice.get("/api/tasks/?view=x").status_code == 400


@pytest.mark.usefixtures("emulators_on_loopback")
def test_view_tasks_carry_their_storage_filename_and_order_by_it(alice, project, s3_server, s3_bucket):
    for key in ("b/2.jpg", "a.jpg", "b/1.jpg"):
        put(s3_server, s3_bucket, key, b"x")
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, use_blob_urls=True, recursive_scan=True))
    sync(alice, storage)
    view = make_view(alice, project, {"data": {"ordering": ["-tasks:storage_filename"]}}).json()
    tasks = alice.get(f"/api/tasks/?view={view['id']}").json()["tasks"]
    assert [t["storage_filename"] for t in tasks] == ["b/2.jpg", "b/1.jpg", "a.jpg"]
    assert all("/resolve/?fileuri=" in t["data"]["image"] for t in tasks)


def annotate(client, task, result=None):
    response = client.post(f"/api/tasks/{task.id}/annotations", {"result": result or []}, format="json")
    assert response.status_code == 201, response.content


def action(client, project, body=None, action_id="delete_tasks_annotations"):
    query = f"project={project.id}" + (f"&id={action_id}" if action_id else "")
    return client.post(f"/api/dm/actions?{query}", body or {}, format="json")


def test_delete_tasks_annotations_of_all_tasks(alice, project):
    import_tasks(alice, project, [{"image": "1"}, {"image": "2"}])
    for task in project.tasks.all():
        annotate(alice, task)
    response = alice.post(f"/api/dm/actions?id=delete_tasks_annotations&project={project.id}")  # no body
    assert response.status_code == 200
    assert response.json() == {"processed_items": 2, "detail": "Deleted 2 annotations"}
    assert not Annotation.objects.filter(project=project).exists()
    assert list(project.tasks.values_list("total_annotations", "is_labeled")) == [(0, False), (0, False)]


def test_delete_tasks_annotations_of_selected_tasks(alice, project):
    import_tasks(alice, project, [{"image": "1"}, {"image": "2"}, {"image": "3"}])
    t1, t2, t3 = project.tasks.order_by("inner_id")
    for task in (t1, t2, t3):
        annotate(alice, task)
    response = action(alice, project, {"selectedItems": {"all": False, "included": [t1.id]}})
    assert response.json()["processed_items"] == 1
    response = action(alice, project, {"selectedItems": {"all": True, "excluded": [t3.id]}})
    assert response.json() == {"processed_items": 1, "detail": "Deleted 1 annotations"}
    assert list(Annotation.objects.filter(project=project).values_list("task_id", flat=True)) == [t3.id]
    assert Task.objects.get(pk=t3.id).total_annotations == 1 and Task.objects.get(pk=t2.id).total_annotations == 0
    # filters are not applied: an action on "all" with filters is refused, nothing deleted
    filtered = {
        "filters": {"conjunction": "and", "items": [{"filter": "filter:tasks:id"}]},
        "selectedItems": {"all": True},
    }
    assert action(alice, project, filtered).status_code == 400
    assert action(alice, project, {"selectedItems": {"all": False, "included": ["x"]}}).status_code == 400
    assert Annotation.objects.filter(project=project).count() == 1


def test_actions_unknown_missing_and_other_organization(alice, bob, project, bob_project):
    import_tasks(bob, bob_project, [{"image": "1"}])
    annotate(bob, bob_project.tasks.get())
    assert action(alice, bob_project).status_code == 404
    assert Annotation.objects.filter(project=bob_project).count() == 1
    assert action(alice, project, action_id="no_such_action").status_code == 400
    assert action(alice, project, action_id=None).status_code == 422
    bob_view = make_view(bob, bob_project).json()
    assert action(alice, project, {"view": bob_view["id"]}).status_code == 404


@pytest.mark.usefixtures("emulators_on_loopback")
def test_delete_tasks_annotations_removes_auto_exported_objects(
    alice, project, s3_server, s3_bucket, django_capture_on_commit_callbacks
):
    import_tasks(alice, project, [{"image": "1"}])
    create_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="out", can_delete_objects=True), export=True)
    with django_capture_on_commit_callbacks(execute=True):
        annotate(alice, project.tasks.get(), [{"n": 1}])
    assert len(objects(s3_server, s3_bucket)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert action(alice, project).json()["processed_items"] == 1
    assert objects(s3_server, s3_bucket) == []

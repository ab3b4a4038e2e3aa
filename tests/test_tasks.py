"""Task import in every format, task list pagination, `next`, annotations and counters."""

import pytest

from tasks.models import Annotation, Prediction, Task
from tests.api_errors import error_detail, error_text, validation_errors

pytestmark = pytest.mark.django_db


def import_tasks(client, project, tasks):
    return client.post(f"/api/projects/{project.id}/import", tasks, format="json")


def test_import_flat_data_tasks(alice, project):
    response = import_tasks(alice, project, [{"image": "s3://bucket/1.jpg"}, {"image": "s3://bucket/2.jpg"}])
    assert response.status_code == 201
    assert response.json()["task_count"] == 2
    assert list(project.tasks.order_by("inner_id").values_list("data", flat=True)) == [
        {"image": "s3://bucket/1.jpg"},
        {"image": "s3://bucket/2.jpg"},
    ]


def test_import_full_format_with_annotations_predictions_and_meta(alice, project):
    task = {
        "data": {"image": "s3://bucket/1.jpg"},
        "meta": {"source": "camera 3"},
        "annotations": [{"result": [{"type": "choices", "value": {"choices": ["cat"]}}], "lead_time": 2.5}],
        "predictions": [{"result": [], "score": 0.9, "model_version": "v1"}],
    }
    body = import_tasks(alice, project, [task]).json()
    assert (body["task_count"], body["annotation_count"], body["prediction_count"]) == (1, 1, 1)
    created = Task.objects.get(project=project)
    assert created.data == {"image": "s3://bucket/1.jpg"} and created.meta == {"source": "camera 3"}
    assert created.is_labeled and created.total_annotations == 1 and created.total_predictions == 1
    annotation = Annotation.objects.get(task=created)
    assert annotation.completed_by == alice.user and annotation.lead_time == 2.5
    assert Prediction.objects.get(task=created).model_version == "v1"


def test_import_accepts_a_single_task_object(alice, project):
    assert import_tasks(alice, project, {"image": "a.jpg"}).json()["task_count"] == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        ([{"data": {"x": 1}, "annotations": [{"result": "oops"}]}], "'result' must be a list"),
        ([{"data": {"x": 1}, "predictions": {"result": []}}], "'predictions' must be a list"),
        (["just a string"], "must be a JSON object"),
        ([], "non-empty"),
        # PostgreSQL stores no NUL character in text or jsonb: the insert would fail (a 500).
        ([{"text": "a\x00b"}], "text contains a NUL character"),
        (
            [{"data": {"x": 1}, "predictions": [{"result": [], "model_version": "v\x00"}]}],
            "predictions[0].model_version",
        ),
    ],
)
def test_invalid_import_gives_400_naming_the_problem_and_creates_nothing(alice, project, bad, message):
    response = import_tasks(alice, project, [{"image": "ok.jpg"}] + bad if bad else bad)
    assert message in error_text(response, 400)
    assert project.tasks.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"text": ["a", "b\x00"]}},
        {"data": "text=a&text=b", "content_type": "application/x-www-form-urlencoded"},
    ],
)
def test_import_takes_json_only(alice, project, body):
    response = alice.post(f"/api/projects/{project.id}/import", **body)
    assert "application/json" in error_detail(response, 415)
    assert project.tasks.count() == 0


@pytest.mark.parametrize(
    "body, message",
    [
        # Python's json reads 1e400 as infinity: jsonb refuses it, and a JSON answer cannot carry
        # it (the whole task list answered 500 once one was stored).
        ('[{"x": 1e400}]', "x is not a finite number"),
        ('[{"data": {"x": 1}, "annotations": [{"result": [], "lead_time": -1e400}]}]', "annotations[0].lead_time"),
        ('[{"data": {"x": 1}, "predictions": [{"result": [], "score": 1%s}]}]' % ("0" * 400), "'score' is too large"),
    ],
)
def test_numbers_beyond_a_double_are_refused(alice, project, body, message):
    response = alice.post(f"/api/projects/{project.id}/import", body, content_type="application/json")
    assert message in str(validation_errors(response))
    assert project.tasks.count() == 0
    assert alice.get(f"/api/tasks/?project={project.id}").status_code == 200


def test_inner_id_is_consecutive_per_project(alice, project):
    import_tasks(alice, project, [{"n": 1}, {"n": 2}])
    import_tasks(alice, project, [{"n": 3}])
    other = alice.post("/api/projects/", {"title": "Other"}, format="json").json()
    alice.post(f"/api/projects/{other['id']}/import", [{"n": 1}], format="json")
    assert list(project.tasks.order_by("id").values_list("inner_id", flat=True)) == [1, 2, 3]
    assert list(Task.objects.filter(project_id=other["id"]).values_list("inner_id", flat=True)) == [1]


def test_task_list_is_paginated_like_label_studio(alice, project):
    import_tasks(alice, project, [{"n": i} for i in range(5)])
    page = alice.get(f"/api/tasks/?project={project.id}&page=2&page_size=2").json()
    assert page["total"] == 5
    assert [t["data"]["n"] for t in page["tasks"]] == [2, 3]
    assert {"total_annotations", "total_predictions"} <= page.keys()
    assert alice.get(f"/api/tasks/?project={project.id}&page=4&page_size=2").status_code == 404


def test_task_list_requires_project(alice):
    response = alice.get("/api/tasks/")
    assert "project" in validation_errors(response)


def test_next_returns_first_task_without_annotations(alice, project):
    import_tasks(alice, project, [{"data": {"n": 1}, "annotations": [{"result": []}]}, {"n": 2}, {"n": 3}])
    first = alice.get(f"/api/projects/{project.id}/next").json()
    assert first["data"] == {"n": 2}
    alice.post(f"/api/tasks/{first['id']}/annotations/", {"result": []}, format="json")
    assert alice.get(f"/api/projects/{project.id}/next").json()["data"] == {"n": 3}


def test_next_answers_404_when_everything_is_labeled(alice, project):
    assert alice.get(f"/api/projects/{project.id}/next").status_code == 404


def test_annotation_lifecycle_updates_task_counters(alice, project):
    import_tasks(alice, project, [{"n": 1}])
    task = project.tasks.get()
    created = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [{"a": 1}]}, format="json")
    assert created.status_code == 201
    annotation_id = created.json()["id"]
    task.refresh_from_db()
    assert task.is_labeled and task.total_annotations == 1
    assert alice.get(f"/api/tasks/{task.id}/annotations/").json()[0]["id"] == annotation_id

    patched = alice.patch(f"/api/annotations/{annotation_id}/", {"was_cancelled": True}, format="json")
    assert patched.status_code == 200
    task.refresh_from_db()
    assert (task.total_annotations, task.cancelled_annotations, task.is_labeled) == (0, 1, False)

    assert alice.delete(f"/api/annotations/{annotation_id}/").status_code == 204
    task.refresh_from_db()
    assert task.cancelled_annotations == 0


def test_annotation_result_must_be_a_list(alice, project):
    import_tasks(alice, project, [{"n": 1}])
    task = project.tasks.get()
    response = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": "x"}, format="json")
    assert "result" in validation_errors(response)


def test_nul_characters_are_refused_and_nothing_changes(alice, project):
    import_tasks(alice, project, [{"n": 1}])
    task = project.tasks.get()
    for field, value in (("data", {"n": "\x00"}), ("meta", {"k\x00": 1})):
        response = alice.patch(f"/api/tasks/{task.id}/", {field: value}, format="json")
        assert "NUL character" in validation_errors(response)[field][0]
    response = alice.patch(f"/api/tasks/{task.id}/", '{"data": {"n": 1e400}}', content_type="application/json")
    assert "data" in validation_errors(response)  # DRF's JSONField refuses it
    response = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [{"v": "\x00"}]}, format="json")
    assert "[0].v contains a NUL" in validation_errors(response)["result"][0]
    task.refresh_from_db()
    assert task.data == {"n": 1} and task.meta == {} and task.total_annotations == 0


def test_tasks_and_annotations_of_other_organizations_are_hidden(alice, bob, project):
    import_tasks(alice, project, [{"data": {"n": 1}, "annotations": [{"result": []}]}])
    task = project.tasks.get()
    annotation = task.annotations.get()
    assert bob.get(f"/api/tasks/{task.id}/").status_code == 404
    assert bob.patch(f"/api/tasks/{task.id}/", {"data": {}}, format="json").status_code == 404
    assert bob.post(f"/api/tasks/{task.id}/annotations/", {"result": []}, format="json").status_code == 404
    assert bob.get(f"/api/annotations/{annotation.id}/").status_code == 404
    assert bob.delete(f"/api/annotations/{annotation.id}/").status_code == 404


def test_update_and_delete_task(alice, project):
    import_tasks(alice, project, [{"n": 1}])
    task = project.tasks.get()
    assert alice.patch(f"/api/tasks/{task.id}/", {"data": {"n": 2}}, format="json").json()["data"] == {"n": 2}
    assert alice.patch(f"/api/tasks/{task.id}/", {"data": [1]}, format="json").status_code == 400
    assert alice.delete(f"/api/tasks/{task.id}/").status_code == 204


@pytest.mark.parametrize(
    "fmt, bad",
    # As a form field, "null" parses to None after DRF's null check: it used to reach the NOT
    # NULL column (500).
    [("multipart", "null"), ("multipart", "[1]"), ("json", None), ("json", [1])],
)
def test_task_meta_must_be_an_object_and_is_kept_when_refused(alice, project, fmt, bad):
    import_tasks(alice, project, [{"data": {"n": 1}, "meta": {"source": "a"}}])
    task = project.tasks.get()
    response = alice.patch(f"/api/tasks/{task.id}/", {"meta": bad}, format=fmt)
    assert "meta" in validation_errors(response)
    task.refresh_from_db()
    assert task.meta == {"source": "a"}

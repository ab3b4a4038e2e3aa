"""Ids in query parameters and bodies follow the URLs' rule (core.api.ID_PATTERN): a value of
more than 18 digits is out of a bigint's range and names nothing, a 404, not a 500 from the
database (OverflowError on SQLite, NumericValueOutOfRange on PostgreSQL)."""

import pytest

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


def test_a_project_id_beyond_a_bigint_is_a_404_everywhere(alice):
    for path in (
        f"/api/tasks/?project={HUGE}",
        f"/api/storages/s3?project={HUGE}",
        f"/api/storages?project={HUGE}",
    ):
        assert alice.get(path).status_code == 404, path
    views = alice.get(f"/api/dm/views?project={HUGE}")  # a filter: no such project, no view
    assert views.status_code == 200 and views.json() == [], views.content
    assert alice.post(f"/api/dm/actions?id=delete_tasks_annotations&project={HUGE}").status_code == 404


def test_a_view_id_beyond_a_bigint_is_a_404(alice, project):
    assert alice.get(f"/api/tasks/?view={HUGE}").status_code == 404
    response = alice.post(f"/api/dm/actions?id=delete_tasks_annotations&project={project.id}&view={HUGE}")
    assert response.status_code == 404


def test_a_task_body_naming_a_project_beyond_a_bigint_is_a_404(alice):
    response = alice.post("/api/tasks/", {"project": int(HUGE), "data": {"image": "x"}}, format="json")
    assert response.status_code in (400, 404), response.content

"""Requests that break a server limit get a clear 4xx naming the limit and its setting, not a
500: a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (413), too many form fields or files, JSON
nested deeper than the parser accepts (400). Task imports of a few megabytes, which labeling
teams send every day, are within the default limit.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.models import Project
from tests.api_errors import error_detail

pytestmark = pytest.mark.django_db


def import_raw(client, project, text):
    return client.post(f"/api/projects/{project.id}/import", text, content_type="application/json")


def test_a_3_mb_task_import_is_accepted(alice, project):
    tasks = [{"text": f"{i} " + "x" * 1000} for i in range(3000)]
    body = json.dumps(tasks)
    assert len(body) > 3_000_000
    response = import_raw(alice, project, body)
    assert response.status_code == 201, response.content[:500]
    assert response.json()["task_count"] == 3000 and project.tasks.count() == 3000


def test_a_body_over_the_limit_is_413_naming_the_limit_and_the_setting(alice, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = import_raw(alice, project, json.dumps([{"text": "x" * 20_000}]))
    detail = error_detail(response, 413)
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in detail and "10000 bytes" in detail, detail
    assert project.tasks.count() == 0
    # Every JSON endpoint alike, and forms.
    response = alice.patch(f"/api/projects/{project.id}/", {"title": "x" * 20_000}, format="json")
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in error_detail(response, 413)
    response = alice.post("/api/projects/", {"title": "x" * 20_000})  # multipart: its fields count
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in error_detail(response, 413)
    response = alice.post("/api/projects/", f"title={'x' * 20_000}", content_type="application/x-www-form-urlencoded")
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in error_detail(response, 413)
    assert Project.objects.get().title == project.title


def test_too_many_form_fields_is_400_naming_the_setting(alice, project):
    fields = "&".join(f"f{i}=1" for i in range(1001)) + "&title=Many"
    response = alice.post("/api/projects/", fields, content_type="application/x-www-form-urlencoded")
    detail = error_detail(response, 400)
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in detail and "1000" in detail, detail
    response = alice.get(f"/api/projects/?{fields}")  # the query string counts too
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in error_detail(response, 400)
    assert Project.objects.count() == 1


def test_too_many_files_is_400_naming_the_setting(alice, project):
    files = {f"f{i}": SimpleUploadedFile(f"{i}.txt", b"x") for i in range(101)}
    response = alice.post("/api/projects/", {"title": "Files", **files})
    assert "DATA_UPLOAD_MAX_NUMBER_FILES" in error_detail(response, 400)
    assert Project.objects.count() == 1


@pytest.mark.parametrize("deep", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_json_deeper_than_the_parser_accepts_is_400_naming_the_limit(alice, project, deep):
    assert import_raw(alice, project, '[{"n": 1}]').status_code == 201
    task = project.tasks.get()
    for method, path in [
        ("post", f"/api/projects/{project.id}/import"),
        ("patch", f"/api/tasks/{task.id}/"),
        ("post", f"/api/tasks/{task.id}/annotations/"),
        ("post", "/api/storages/s3/validate"),
    ]:
        response = getattr(alice, method)(path, deep, content_type="application/json")
        detail = error_detail(response, 400)
        assert "nested too deeply" in detail and "100 levels" in detail, detail
    assert project.tasks.count() == 1 and task.annotations.count() == 0

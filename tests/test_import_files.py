"""`POST /api/projects/<id>/import` with uploaded files (multipart): txt (one task a line,
under the project's data variable), json (a list of tasks or one task) and jsonl; every task
goes through the same checks as a JSON body."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tasks.models import Task

pytestmark = pytest.mark.django_db


def upload(client, project, *files):
    body = {f"file{i}": SimpleUploadedFile(name, content) for i, (name, content) in enumerate(files)}
    return client.post(f"/api/projects/{project.id}/import", body, format="multipart")


def data(project):
    return [t.data for t in Task.objects.filter(project=project).order_by("inner_id")]


def test_txt_lines_become_tasks_under_the_data_variable(alice, project):
    response = upload(alice, project, ("links.txt", b"s3://b/1.jpg\n\ns3://b/2.jpg\r\n"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["task_count"] == 2 and body["found_formats"] == [".txt"] and body["data_columns"] == ["image"]
    assert set(body) >= {"annotation_count", "prediction_count", "duration", "file_upload_ids", "could_be_tasks_list"}
    assert data(project) == [{"image": "s3://b/1.jpg"}, {"image": "s3://b/2.jpg"}]


def test_json_and_jsonl_files(alice, project):
    tasks = [{"data": {"image": "a"}, "annotations": [{"result": []}]}, {"image": "b"}]
    response = upload(
        alice,
        project,
        ("list.json", json.dumps(tasks).encode()),
        ("one.json", b'{"image": "c"}'),
        ("rows.jsonl", b'{"image": "d"}\n{"data": {"image": "e"}}\n'),
    )
    assert response.status_code == 201, response.content
    assert response.json()["task_count"] == 5 and response.json()["annotation_count"] == 1
    assert data(project) == [{"image": x} for x in "abcde"]


@pytest.mark.parametrize(
    "name, content",
    [
        ("bad.json", b"[1, 2"),  # not JSON
        ("nan.json", b'[{"image": NaN}]'),  # not JSON either
        ("nul.json", b'[{"image": "a\\u0000b"}]'),  # NUL: PostgreSQL cannot store it
        ("surrogate.jsonl", b'{"image": "\\ud800"}\n'),
        ("deep.json", b'{"image": ' + b"[" * 150 + b"]" * 150 + b"}"),
        ("image.png", b"\x89PNG"),  # not a task file type
        ("latin.txt", b"caf\xe9"),  # not UTF-8
        ("empty.txt", b"\n\n"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_created(alice, project, name, content):
    response = upload(alice, project, ("good.txt", b"fine"), (name, content))
    assert response.status_code == 400 if name != "empty.txt" else 201, response.content
    if name != "empty.txt":
        assert data(project) == []


def test_form_body_without_files_is_415_and_other_org_is_404(alice, bob, project):
    assert alice.post(f"/api/projects/{project.id}/import", {"image": "x"}).status_code == 415  # urlencoded
    response = alice.post(f"/api/projects/{project.id}/import", {"image": "x"}, format="multipart")
    assert response.status_code == 415
    assert upload(bob, project, ("links.txt", b"x")).status_code == 404
    assert data(project) == []


def test_uploads_over_the_size_limit_are_413(alice, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = upload(alice, project, ("big.txt", b"x" * 600), ("big2.txt", b"y" * 600))
    assert response.status_code == 413, response.content
    assert data(project) == []

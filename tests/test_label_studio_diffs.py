"""Answers where we once differed from Label Studio 1.23.2 (docs/decisions.md, "Label Studio
differences"): a storage that is not synchronizable, booleans missing from a form body,
URIs inside HTML attributes, the form layout's shape, unknown projects in lists, and the
completion time in a sync's meta."""

import pytest

from io_storages.resolve import TaskDataResolver, encode_fileuri
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, put, sync

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]


@pytest.fixture
def bucket(s3_server, s3_bucket):
    return s3_server, s3_bucket


@pytest.mark.parametrize("export", [False, True])
def test_a_storage_that_is_not_synchronizable_is_not_synced(alice, project, bucket, export):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = create_storage(alice, project, s3_config(endpoint, name, use_blob_urls=True), export=export)
    path = f"/api/storages/{'export/' if export else ''}s3/{storage['id']}"
    assert alice.patch(path, {"synchronizable": False}, format="json").status_code == 200
    response = alice.post(f"{path}/sync", format="json")
    assert response.status_code == 400
    body = response.json()
    message = f"Storage {storage['id']} is not synchronizable"
    assert body["message"] == message  # Label Studio's key, and our envelope's
    assert body["detail"] == message and body["status_code"] == 400 and "id" in body
    assert alice.get(path).json()["status"] == "initialized" and project.tasks.count() == 0
    alice.patch(path, {"synchronizable": True}, format="json")
    assert sync(alice, storage, export=export)["status"] == "completed"


@pytest.mark.parametrize("body_format", ["multipart", "urlencoded"])
def test_booleans_missing_from_a_form_body_take_the_model_default(alice, project, bucket, body_format):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")  # (saving checks that the bucket has objects)
    data = {"project": project.id, **s3_config(endpoint, name)}
    if body_format == "multipart":
        response = alice.post("/api/storages/s3", data, format="multipart")
    else:
        from urllib.parse import urlencode

        response = alice.generic(
            "POST", "/api/storages/s3", urlencode(data), content_type="application/x-www-form-urlencoded"
        )
    assert response.status_code == 201, response.content
    storage = response.json()
    assert storage["presign"] is True and storage["synchronizable"] is True  # as in Label Studio
    assert storage["use_blob_urls"] is False and storage["recursive_scan"] is False  # their defaults
    # a form update leaves a boolean it does not name as it is; one it names is read as given
    path = f"/api/storages/s3/{storage['id']}"
    alice.patch(path, {"presign": False}, format="json")
    assert alice.patch(path, {"title": "renamed"}, format="multipart").json()["presign"] is False
    changed = alice.patch(path, {"presign": "true", "synchronizable": "false"}, format="multipart").json()
    assert changed["presign"] is True and changed["synchronizable"] is False


@pytest.fixture
def resolver(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    create_storage(alice, project, s3_config(endpoint, name, presign=False))
    return name, TaskDataResolver(project.id, "http://h")


def link(uri):
    return f"http://h/tasks/7/resolve/?fileuri={encode_fileuri(uri)}"


def test_a_uri_in_a_quoted_attribute_runs_to_the_closing_quote(resolver):
    name, resolver = resolver
    # Label Studio's cases: spaces and the other quote inside, percent-escapes kept as written
    for key in ["file with /spaces and' / ' / quotes.jpg", "file with /spaces and' / ' / %2Bquotes%3D.jpg"]:
        uri = f"s3://{name}/{key}"
        assert resolver.rewrite(7, {"text": f'<a href="{uri}"/>'}) == {"text": f'<a href="{link(uri)}"/>'}
    uri = f's3://{name}/a "b".jpg'
    assert resolver.rewrite(7, f"<img src='{uri}'>") == f"<img src='{link(uri)}'>"
    two = f'<img src="s3://{name}/a b.jpg" alt="x"><img src="s3://{name}/c.jpg">'
    assert resolver.rewrite(7, two) == (
        f'<img src="{link(f"s3://{name}/a b.jpg")}" alt="x"><img src="{link(f"s3://{name}/c.jpg")}">'
    )


def test_a_uri_in_plain_text_ends_at_whitespace(resolver):
    name, resolver = resolver
    uri = f"s3://{name}/a.jpg"
    text = f"see {uri} and these words, then {uri}\tand {uri}"
    assert resolver.rewrite(7, text) == f"see {link(uri)} and these words, then {link(uri)}\tand {link(uri)}"
    assert resolver.rewrite(7, uri) == link(uri)
    # an unclosed quote does not swallow the rest of the line, nor does a quote on another line
    assert resolver.rewrite(7, f'"{uri} and words') == f'"{link(uri)} and words'
    assert resolver.rewrite(7, f'"{uri} and\nwords"') == f'"{link(uri)} and\nwords"'


def test_a_value_that_starts_with_a_uri_is_one_uri_to_its_end(resolver):
    """Label Studio's rule for a string that starts with the scheme: the whole (stripped)
    string, spaces included, which is what a blob import of a key with spaces holds."""
    name, resolver = resolver
    uri = f"s3://{name}/my photos/a b.jpg"
    assert resolver.rewrite(7, {"image": uri, "padded": f"  {uri} "}) == {
        "image": link(uri),
        "padded": f"  {link(uri)} ",
    }
    # not past its line: a value of several lines is text with URIs in it
    assert resolver.rewrite(7, f"s3://{name}/a.jpg and\nwords") == f"{link(f's3://{name}/a.jpg')} and\nwords"
    assert resolver.rewrite(7, "s3://another-bucket/a b.jpg") == "s3://another-bucket/a b.jpg"  # no storage


def test_the_form_layout_has_label_studios_shape(alice):
    for path in ["/api/storages/s3/form", "/api/storages/export/s3/form", "/api/storages/gcs/form"]:
        layout = alice.get(path).json()
        assert isinstance(layout, list) and layout
        for group in layout:
            assert set(group) == {"columnCount", "fields"} and group["columnCount"] >= 1
            for field in group["fields"]:
                assert {"type", "name", "label", "required", "help", "default"} <= set(field)
        assert layout[0]["fields"][0]["name"] == "title"
    fields = {f["name"]: f for g in alice.get("/api/storages/s3/form").json() for f in g["fields"]}
    assert fields["presign"]["type"] == "toggle" and fields["aws_access_key_id"]["type"] == "password"


@pytest.mark.parametrize(
    "path", ["/api/storages/s3", "/api/storages/export/s3", "/api/storages", "/api/storages/export"]
)
def test_a_project_parameter_that_names_no_project_is_a_404(alice, path):
    for value in ["abc", "-1", "1.5", "9" * 30]:
        assert alice.get(f"{path}?project={value}").status_code == 404


def test_a_finished_sync_records_its_completion_time(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = create_storage(alice, project, s3_config(endpoint, name, use_blob_urls=True))
    meta = sync(alice, storage)["meta"]
    assert meta["time_completed"] >= meta["time_in_progress"]

"""Resolving storage URIs: task data rewriting, redirect (presigned) and proxy modes, Range,
ETag/304, limits and permissions — for every provider against its real server."""

import base64
import gzip
import json

import pytest
import requests

from io_storages.resolve import TaskDataResolver
from tests.fixtures.s3 import S3Adapter
from tests.providers import ADAPTERS, ENCODING_KINDS

pytestmark = pytest.mark.django_db

PRESIGNING = {"s3", "gcs", "azure"}  # providers with presigned URLs
CONTENT = bytes(range(256)) * 40  # 10,240 bytes, every byte value


@pytest.fixture(autouse=True)
def _serve_local_files(settings):
    settings.LOCAL_FILES_SERVING_ENABLED = True


@pytest.fixture
def served(alice, project, provider):
    """A project whose import storage (proxy mode) holds `media/clip.bin`, and a task pointing at it."""
    return serve(alice, project, provider, "media/clip.bin", CONTENT)


def serve(alice, project, provider, key, content, **put_options):
    """Put `key` (under `media/`) in a new location, add a proxy-mode import storage for it to
    `project` and a task pointing at it; the task, its URI and the URL that serves it."""
    location = provider.new_location()
    provider.put(location, key, content, **put_options)
    config = {"project": project.id, **provider.config(location, prefix="media", use_blob_urls=True)}
    if provider.kind in PRESIGNING:
        config["presign"] = False
    response = alice.post(f"/api/storages/{provider.kind}/", config, format="json")
    assert response.status_code == 201, response.content
    uri = provider.uri(location, key)
    alice.post(f"/api/projects/{project.id}/import", [{"video": uri}], format="json")
    task = project.tasks.get()
    # Local files are served by their own view; every other URI through the resolve endpoint.
    url = uri if provider.kind == "localfiles" else f"/tasks/{task.id}/resolve/?fileuri={fileuri(uri)}"
    return {"uri": uri, "url": url, "task": task, "location": location, "storage": response.json()}


def fileuri(uri):
    return base64.urlsafe_b64encode(uri.encode()).decode()


def get(client, served, **headers):
    return client.get(served["url"], **headers)


# Local files are served by /data/local-files/ (tests/test_local_files_view.py), never
# resolved: tests of the resolve endpoint itself run for the other providers.
resolvable = pytest.mark.parametrize("provider", sorted(set(ADAPTERS) - {"localfiles"}), indirect=True)
# Redis keeps no version of a value (no ETag, no mtime): its files get no ETag and no 304.
versioned = pytest.mark.parametrize("provider", sorted(set(ADAPTERS) - {"redis"}), indirect=True)


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_proxy_streams_the_whole_object(alice, served):
    response = get(alice, served)
    assert response.status_code == 200
    assert body(response) == CONTENT
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"].startswith("private, max-age=3600")


@pytest.mark.parametrize(
    "header, start, end",
    [
        ("bytes=0-", 0, 10239),
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
)
def test_proxy_answers_ranges_with_exact_bytes(alice, served, header, start, end):
    response = get(alice, served, HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == CONTENT[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response["Content-Length"] == str(end - start + 1)


def test_range_past_the_end_is_416(alice, served):
    response = get(alice, served, HTTP_RANGE="bytes=20000-")
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(CONTENT)}"


def test_open_ended_ranges_are_bounded_by_max_range_size(alice, served, settings):
    settings.RESOLVER_PROXY_MAX_RANGE_SIZE = 1000
    response = get(alice, served, HTTP_RANGE="bytes=0-")
    assert response.status_code == 206 and body(response) == CONTENT[:1000]
    assert response["Content-Range"] == f"bytes 0-999/{len(CONTENT)}"


def test_chunks_are_at_most_the_buffer_size(alice, served, settings):
    settings.RESOLVER_PROXY_BUFFER_SIZE = 1024
    chunks = list(get(alice, served).streaming_content)
    assert b"".join(chunks) == CONTENT and len(chunks) >= 10 and max(map(len, chunks)) == 1024


def test_time_limit_stops_the_stream(alice, served, settings):
    from io_storages.proxy import StreamTimeout

    settings.RESOLVER_PROXY_BUFFER_SIZE = 1024
    settings.RESOLVER_PROXY_TIMEOUT = 0
    response = get(alice, served)
    received = []
    with pytest.raises(StreamTimeout):
        for chunk in response.streaming_content:
            received.append(chunk)
    assert len(received) == 1  # the transfer is cut, never completed with a short body


@versioned
def test_if_none_match_gives_304_without_opening_the_object(alice, served, monkeypatch):
    etag = get(alice, served)["ETag"]
    from io_storages.client import StorageClient

    def must_not_open(*args, **kwargs):
        raise AssertionError("the object was opened")

    for cls in StorageClient.__subclasses__():
        monkeypatch.setattr(cls, "open", must_not_open)
    response = get(alice, served, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304 and response["ETag"] == etag


@versioned
def test_etag_depends_on_the_user(alice, make_member, served):
    colleague = make_member("carol@example.com", "Org A")
    assert get(alice, served)["ETag"] != get(colleague, served)["ETag"]


@pytest.mark.parametrize("provider", ["redis"], indirect=True)
def test_unversioned_objects_get_no_etag_and_no_304(alice, served):
    response = get(alice, served, HTTP_IF_NONE_MATCH="*")
    assert response.status_code == 200 and "ETag" not in response
    assert body(response) == CONTENT


def test_other_organization_gets_404(bob, served, project):
    assert get(bob, served).status_code == 404
    assert bob.get(f"/projects/{project.id}/resolve/?fileuri={fileuri(served['uri'])}").status_code == 404


@pytest.mark.parametrize("provider", ["s3"], indirect=True)
def test_a_proxied_read_costs_two_queries(alice, served, django_assert_num_queries):
    with django_assert_num_queries(2):  # the token; the storage, with the access check in the same query
        assert body(get(alice, served)) == CONTENT


@resolvable
def test_project_resolve_and_presign_alias(alice, provider, served, project):
    response = alice.get(f"/projects/{project.id}/presign/?fileuri={fileuri(served['uri'])}")
    assert response.status_code == 200 and body(response) == CONTENT


@resolvable
def test_plain_uri_is_accepted(alice, provider, served):
    response = alice.get(f"/tasks/{served['task'].id}/resolve/", {"fileuri": served["uri"]})
    assert response.status_code == 200 and body(response) == CONTENT


@resolvable
def test_bad_requests(alice, provider, served):
    task_id = served["task"].id
    assert alice.get(f"/tasks/{task_id}/resolve/").status_code == 400
    assert alice.get(f"/tasks/{task_id}/resolve/?fileuri={fileuri('s3://unknown-bucket/x')}").status_code == 404
    assert alice.get(f"/tasks/999999/resolve/?fileuri={fileuri(served['uri'])}").status_code == 404


ODD_RANGES = ["bytes=5-2", "bytes=abc", "bytes=0-99999999999999999999999", "bytes=99999999999999999999999-",
              "bytes=-0", "bytes=-99999999999999999999999", "bytes=1-2,3-4", "items=0-1"]  # fmt: skip
ODD_FILEURIS = ["!!!", base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(), "x" * 10000, fileuri("S3://B/x"),
                fileuri("file:///etc/passwd"), fileuri("http://169.254.169.254/latest/meta-data/")]  # fmt: skip


def test_odd_ranges_and_uris_get_an_answer_never_a_5xx(alice, served, project):
    for header in ODD_RANGES:
        response = get(alice, served, HTTP_RANGE=header)
        assert response.status_code in (200, 206, 416), (header, response.status_code)
        body(response)
    for value in ODD_FILEURIS:
        for path in (f"/tasks/{served['task'].id}/resolve/", f"/projects/{project.id}/resolve/"):
            response = alice.get(path, {"fileuri": value})
            assert response.status_code in (400, 404), (value[:40], response.status_code)


def test_missing_object_is_404(alice, served, provider):
    provider.delete(served["location"], "media/clip.bin")
    assert get(alice, served).status_code == 404


@resolvable
def test_task_data_is_rewritten_in_every_task_response(alice, provider, served, project):
    """Relative links without HOSTNAME, as Label Studio writes them: never the request's host."""
    task_id = served["task"].id
    expected = f"/tasks/{task_id}/resolve/?fileuri={fileuri(served['uri'])}"
    assert alice.get(f"/api/tasks/{task_id}/", HTTP_HOST="internal:8080").json()["data"]["video"] == expected
    assert alice.get(f"/api/tasks/?project={project.id}").json()["tasks"][0]["data"]["video"] == expected
    assert alice.get(f"/api/projects/{project.id}/next").json()["data"]["video"] == expected
    assert alice.get(f"/api/tasks/{task_id}/?resolve_uri=false").json()["data"]["video"] == served["uri"]
    assert alice.get(f"/api/projects/{project.id}/tasks").json()[0]["data"]["video"] == served["uri"]  # as LS
    assert body(alice.get(expected)) == CONTENT


@pytest.mark.parametrize("provider", ["s3"], indirect=True)
@pytest.mark.parametrize("hostname", ["https://labels.example.com", "https://labels.example.com/"])
def test_links_start_with_hostname_when_it_is_set(alice, served, project, settings, hostname):
    settings.HOSTNAME = hostname.rstrip("/")  # as core.settings reads it
    task_id = served["task"].id
    expected = f"https://labels.example.com/tasks/{task_id}/resolve/?fileuri={fileuri(served['uri'])}"
    assert alice.get(f"/api/tasks/{task_id}/").json()["data"]["video"] == expected
    assert alice.get(f"/api/tasks/?project={project.id}").json()["tasks"][0]["data"]["video"] == expected
    assert alice.get(f"/api/projects/{project.id}/next").json()["data"]["video"] == expected


def test_redirect_mode_sends_a_presigned_url_that_fetches_the_bytes(alice, served, provider):
    storage = served["storage"]
    if provider.kind not in PRESIGNING:
        # Redis and local files have no presigned URLs: their files are always proxied.
        assert "presign" not in storage
        assert body(get(alice, served)) == CONTENT
        return
    alice.patch(f"/api/storages/{provider.kind}/{storage['id']}", {"presign": True, "presign_ttl": 2}, format="json")
    response = get(alice, served)
    assert response.status_code == 303
    assert response["Cache-Control"] == "no-store, max-age=120"
    assert requests.get(response["Location"], timeout=10).content == CONTENT


# --- rewriting ---------------------------------------------------------------------------
def test_nested_and_embedded_uris_are_rewritten_by_the_matching_storage(alice, project, s3_server, settings):
    settings.SSRF_PROTECTION_ENABLED = False
    s3 = S3Adapter(s3_server)
    bucket_a, bucket_b = s3.new_location(), s3.new_location()
    s3.put(bucket_b, "img.png", b"png-bytes")
    s3.put(bucket_a, "t.json", json.dumps({"page": f'<img src="s3://{bucket_b}/img.png"/>'}).encode())
    for bucket in (bucket_a, bucket_b):
        alice.post("/api/storages/s3/", {"project": project.id, **s3.config(bucket), "presign": False}, format="json")
    data = {
        "html": f'<p>see <img src="s3://{bucket_b}/img.png"> and s3://{bucket_b}/img.png</p>',
        "nested": [{"deep": [f"s3://{bucket_b}/img.png"]}],
        "foreign": "s3://not-a-storage-bucket/x.png",
        "number": 3,
    }
    rewritten = TaskDataResolver(project.id, "http://h").rewrite(7, data)
    url = f"http://h/tasks/7/resolve/?fileuri={fileuri(f's3://{bucket_b}/img.png')}"
    assert rewritten["html"] == f'<p>see <img src="{url}"> and {url}</p>'
    assert rewritten["nested"] == [{"deep": [url]}]
    assert rewritten["foreign"] == "s3://not-a-storage-bucket/x.png" and rewritten["number"] == 3
    # and through the API: a task imported from bucket A resolves its bucket-B file through B
    alice.post(f"/api/projects/{project.id}/import", [{"image": f"s3://{bucket_b}/img.png"}], format="json")
    task = alice.get(f"/api/tasks/?project={project.id}").json()["tasks"][0]
    response = alice.get(task["data"]["image"])
    assert body(response) == b"png-bytes"


@pytest.mark.parametrize("provider", ["s3"], indirect=True)
def test_resolving_does_not_read_the_last_sync_report(alice, served):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from io_storages.registry import all_storage_models

    for model in all_storage_models(export=False):  # a sync that failed for 100,000 objects
        model.objects.update(traceback="object failed\n" * 100_000)
    with CaptureQueriesContext(connection) as queries:
        assert body(get(alice, served)) == CONTENT
    assert not [q["sql"] for q in queries if "traceback" in q["sql"]]


def test_rewriting_a_page_of_tasks_costs_no_query_per_uri(
    alice, project, s3_server, settings, django_assert_max_num_queries
):
    settings.SSRF_PROTECTION_ENABLED = False
    s3 = S3Adapter(s3_server)
    bucket = s3.new_location()
    s3.put(bucket, "a.jpg", b"x")
    alice.post("/api/storages/s3/", {"project": project.id, **s3.config(bucket)}, format="json")
    alice.post(
        f"/api/projects/{project.id}/import", [{"image": f"s3://{bucket}/{i}.jpg"} for i in range(50)], format="json"
    )
    with django_assert_max_num_queries(15):
        tasks = alice.get(f"/api/tasks/?project={project.id}&page_size=50").json()["tasks"]
    assert all("/resolve/?fileuri=" in t["data"]["image"] for t in tasks)


@pytest.mark.parametrize("provider", ENCODING_KINDS, indirect=True)
def test_gzip_encoded_objects_are_proxied_with_their_content_encoding(alice, project, provider):
    page = b"<html>" + b"hello " * 2000 + b"</html>"
    gzipped = gzip.compress(page, mtime=0)
    url = serve(alice, project, provider, "media/page.html", gzipped, content_encoding="gzip")["url"]

    response = alice.get(url)
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(body(response)) == page  # what a browser shows
    ranged = alice.get(url, HTTP_RANGE="bytes=0-9")  # ranges count stored (compressed) bytes
    assert ranged.status_code == 206 and body(ranged) == gzipped[:10]

"""Files served from storages on the service's origin (resolve in proxy mode, /data/local-files/):
only media types that cannot run script are inline; HTML, SVG and everything else are
attachments with a safe filename, and every response is sandboxed (CSP) and never sniffed."""

import base64
import re
from urllib.parse import unquote

import pytest

from tests.fixtures.s3 import new_bucket, s3_admin, s3_config

pytestmark = pytest.mark.django_db

PAGE = b"<html><body><script>fetch('/api/current-user/token').then(r => r.text()).then(alert)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _serve_local_files(settings):
    settings.LOCAL_FILES_SERVING_ENABLED = True


def fileuri(uri):
    return base64.urlsafe_b64encode(uri.encode()).decode()


def serve(alice, project, provider, files):
    """A proxy-mode import storage holding `files` ({key under media/: bytes}); {key: URL}."""
    location = provider.new_location()
    for key, body in files.items():
        provider.put(location, f"media/{key}", body)
    config = {"project": project.id, **provider.config(location, prefix="media", use_blob_urls=True)}
    if provider.kind in ("s3", "gcs", "azure"):
        config["presign"] = False
    response = alice.post(f"/api/storages/{provider.kind}/", config, format="json")
    assert response.status_code == 201, response.content
    urls = {}
    for key in files:
        uri = provider.uri(location, f"media/{key}")
        alice.post(f"/api/projects/{project.id}/import", [{"image": uri}], format="json")
        task = project.tasks.order_by("-id").first()
        urls[key] = uri if provider.kind == "localfiles" else f"/tasks/{task.id}/resolve/?fileuri={fileuri(uri)}"
    return urls


def assert_sandboxed(response):
    assert response["Content-Security-Policy"] == "sandbox", dict(response.items())
    assert response["X-Content-Type-Options"] == "nosniff"


def assert_attachment(response, filename):
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    quoted = re.search(r'filename="([^"\\]*)"', disposition)
    assert quoted and all(32 <= ord(c) < 127 for c in quoted.group(1)), disposition
    encoded = re.search(r"filename\*=UTF-8''([A-Za-z0-9%._~!$&'()*+,;=:@-]+)$", disposition)
    assert encoded and unquote(encoded.group(1)) == filename, disposition


def assert_script_cannot_run(response, key):
    """A planted HTML/SVG file: an attachment, or inline as text/plain (GCS stores uploads
    without a type as text/plain), which with nosniff shows its source."""
    if response["Content-Type"] == "text/plain":
        assert_inline(response)
    else:
        assert_attachment(response, key)
    assert_sandboxed(response)


def assert_inline(response):
    assert not response.get("Content-Disposition", "").startswith("attachment"), dict(response.items())


def test_html_and_svg_are_attachments_and_images_inline_for_every_provider(alice, project, provider):
    urls = serve(alice, project, provider, {"page.html": PAGE, "pic.svg": SVG, "cat.png": PNG, "notes.txt": b"hi"})
    for key in ("page.html", "pic.svg"):
        response = alice.get(urls[key])
        assert response.status_code == 200, response.content
        assert_script_cannot_run(response, key)
    for key in ("cat.png", "notes.txt"):
        response = alice.get(urls[key])
        assert response.status_code == 200 and response["Content-Type"].split(";")[0] in ("image/png", "text/plain")
        assert_inline(response)
        assert_sandboxed(response)


def test_range_head_and_304_keep_working_with_the_new_headers(alice, project, provider):
    urls = serve(alice, project, provider, {"page.html": PAGE})
    ranged = alice.get(urls["page.html"], HTTP_RANGE="bytes=0-5")
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == PAGE[:6]
    assert ranged["Content-Range"] == f"bytes 0-5/{len(PAGE)}"
    assert_script_cannot_run(ranged, "page.html")
    head = alice.head(urls["page.html"])
    assert head.status_code == 200 and head["Content-Length"] == str(len(PAGE))
    assert_script_cannot_run(head, "page.html")
    etag = ranged.get("ETag")
    if etag:  # Redis keeps no version: no ETag, no 304
        again = alice.get(urls["page.html"], HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304
        assert_sandboxed(again)
    past = alice.get(urls["page.html"], HTTP_RANGE=f"bytes={len(PAGE) + 10}-")
    assert past.status_code == 416
    assert_sandboxed(past)


@pytest.fixture
def s3_proxy(alice, project, s3_server, emulators_on_loopback):
    """put(key, body, content_type) on a proxy-mode S3 storage; returns the URL serving it."""
    bucket = new_bucket(s3_server)
    s3_admin(s3_server).put_object(Bucket=bucket, Key="media/.keep", Body=b"")
    config = {"project": project.id, **s3_config(s3_server, bucket, prefix="media", use_blob_urls=True, presign=False)}
    response = alice.post("/api/storages/s3/", config, format="json")
    assert response.status_code == 201, response.content

    def put(key, body, content_type):
        s3_admin(s3_server).put_object(Bucket=bucket, Key=f"media/{key}", Body=body, ContentType=content_type)
        uri = f"s3://{bucket}/media/{key}"
        alice.post(f"/api/projects/{project.id}/import", [{"image": uri}], format="json")
        task = project.tasks.order_by("-id").first()
        return f"/tasks/{task.id}/resolve/?fileuri={fileuri(uri)}"

    return put


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/HTML",
        "image/svg+xml",
        "application/xhtml+xml",
        "text/xml",
        "application/javascript",
        "multipart/x-mixed-replace; boundary=x",
        "not a media type",
    ],
)
def test_the_stored_type_decides_not_the_name(alice, s3_proxy, content_type):
    response = alice.get(s3_proxy("cat.png", PAGE, content_type))
    assert response.status_code == 200, response.content
    assert_attachment(response, "cat.png")
    assert_sandboxed(response)


def test_a_generic_stored_type_falls_back_on_the_name(alice, s3_proxy):
    inline = alice.get(s3_proxy("cat.png", PAGE, "application/octet-stream"))
    assert inline["Content-Type"] == "image/png"  # nosniff: never rendered as the HTML it holds
    assert_inline(inline)
    assert_sandboxed(inline)
    attachment = alice.get(s3_proxy("page.html", PAGE, "binary/octet-stream"))
    assert attachment["Content-Type"] == "text/html"
    assert_attachment(attachment, "page.html")


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "image/jpeg", "audio/mpeg", "video/mp4", "application/pdf", "text/plain; charset=utf-8",
     "application/json"],
)  # fmt: skip
def test_media_that_cannot_run_script_stay_inline(alice, s3_proxy, content_type):
    response = alice.get(s3_proxy("file.bin", b"data", content_type))
    assert response.status_code == 200 and response["Content-Type"] == content_type
    assert_inline(response)
    assert_sandboxed(response)


@pytest.mark.parametrize(
    "key", ['we"ird\\name.html', "été; filename=evil.html", "rtl\u202egnp.html", "x" * 300 + ".html"]
)
def test_attachment_filenames_are_safe(alice, s3_proxy, key):
    response = alice.get(s3_proxy(key, PAGE, "text/html"))
    assert response.status_code == 200, response.content
    disposition = response["Content-Disposition"]
    assert disposition.count('filename="') == 1 and disposition.count("filename*=") == 1, disposition
    assert not any(ord(c) < 32 or ord(c) > 126 for c in disposition), disposition
    quoted = re.search(r'filename="([^"\\]*)"', disposition)
    assert quoted and quoted.group(1).endswith(".html") and len(quoted.group(1)) <= 200, disposition

"""Local-files storages are gated and owned (README "Local files"): none exists, syncs or serves
unless LOCAL_FILES_SERVING_ENABLED, and each organization owns the directory
`<LOCAL_FILES_DOCUMENT_ROOT>/<organization id>/`, the only place its storages may point at.

Real directories under a temporary document root, exercised through the REST API by users of
two organizations: alice (Org A) owns `<root>/<A>/`, bob (Org B) owns `<root>/<B>/`, and bob's
sub-root holds symlinks into alice's. Rows inserted directly stand for storages saved before
these rules existed (or by the admin): they are checked again every time a client is made.
"""

import json
import os
from urllib.parse import quote

import pytest

from core.models import Membership
from io_storages.client import StorageError
from io_storages.localfiles.models import LocalFilesExportStorage, LocalFilesImportStorage
from io_storages.registry import shared_client
from tasks.models import Annotation
from tests.api_errors import error_text

pytestmark = pytest.mark.django_db

TASKS = [{"data": {"text": "private"}, "annotations": [{"result": [{"secret": True}]}]}]


# --- layout ----------------------------------------------------------------------------
@pytest.fixture
def document_root(tmp_path, settings):
    """A fresh LOCAL_FILES_DOCUMENT_ROOT (real path), with serving enabled."""
    root = os.path.realpath(tmp_path / "local-files")
    os.mkdir(root)
    settings.LOCAL_FILES_DOCUMENT_ROOT = root
    settings.LOCAL_FILES_SERVING_ENABLED = True
    return root


def put(path, body):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)


@pytest.fixture
def dirs(document_root, alice, bob):
    """alice's sub-root with images/, tasks/ and an empty out/; bob's with his own images/
    and links into each of alice's directories."""
    a = os.path.join(document_root, str(alice.organization.id))
    b = os.path.join(document_root, str(bob.organization.id))
    put(os.path.join(a, "images", "cat.jpg"), b"meow")
    put(os.path.join(a, "tasks", "t.json"), json.dumps([{"text": "alice's task"}]).encode())
    os.makedirs(os.path.join(a, "out"))
    put(os.path.join(b, "own", "dog.jpg"), b"woof")
    for name in ("images", "tasks", "out"):
        os.symlink(os.path.join(a, name), os.path.join(b, f"link-{name}"))
    return {"root": document_root, "a": a, "b": b}


def url(dirs, path):
    return "/data/local-files/?d=" + quote(os.path.relpath(path, dirs["root"]), safe="/")


def endpoint(export=False, *parts):
    return "/".join(["/api/storages", *(["export"] if export else []), "localfiles", *map(str, parts)])


def messages(response):
    return error_text(response)


def refused_everywhere(client, project, path, export, needle=None):
    """Create, validate and (import) preview of a storage at `path` all answer 400."""
    body = {"project": project.id, "path": path}
    responses = [
        client.post(endpoint(export), body, format="json"),
        client.post(endpoint(export, "validate"), body, format="json"),
    ]
    if not export:
        responses.append(client.post(endpoint(export, "files"), body, format="json"))
    for response in responses:
        assert response.status_code == 400, (path, response.content)
        if needle:
            assert needle in messages(response), response.content
    return responses


def sync(client, storage, export=False):
    response = client.post(endpoint(export, storage.pk, "sync"), format="json")
    assert response.status_code == 200, response.content
    return response.json()


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, n), path) for d, _, names in os.walk(path) for n in names)


# --- default settings ------------------------------------------------------------------------
def default_document_root():
    import core.settings as defaults

    if os.environ.get("LOCAL_FILES_DOCUMENT_ROOT"):
        pytest.skip("LOCAL_FILES_DOCUMENT_ROOT is set in the environment: not the default")
    return defaults.LOCAL_FILES_DOCUMENT_ROOT


def test_the_default_document_root_is_not_the_filesystem_and_holds_no_secret(settings):
    root = os.path.realpath(default_document_root())
    assert root != os.path.realpath(os.sep)
    data_dir = os.path.realpath(settings.DATA_DIR)
    for secret in (data_dir, os.path.join(data_dir, "secret_key"), os.path.join(data_dir, "db.sqlite3")):
        assert os.path.commonpath([root, secret]) != root, f"{secret} is under {root}"


@pytest.mark.parametrize("serving", [False, True])
def test_storages_on_etc_or_the_data_dir_are_refused_with_default_settings(alice, project, settings, serving):
    settings.LOCAL_FILES_DOCUMENT_ROOT = default_document_root()
    settings.LOCAL_FILES_SERVING_ENABLED = serving
    for path in ("/etc", str(settings.DATA_DIR), "/"):
        for export in (False, True):
            refused_everywhere(alice, project, path, export)
    assert not LocalFilesImportStorage.objects.exists() and not LocalFilesExportStorage.objects.exists()


def test_a_directory_containing_the_data_dir_is_refused_even_inside_an_organization_directory(
    alice, project, document_root, settings
):
    # An operator who put DATA_DIR under an organization's directory: the database and the
    # secret key still never become files of a storage.
    holder = os.path.join(document_root, str(alice.organization.id), "service")
    data_dir = os.path.join(holder, "data")
    put(os.path.join(data_dir, "secret_key"), b"not for tenants")
    settings.DATA_DIR = data_dir
    for export in (False, True):
        refused_everywhere(alice, project, holder, export, needle="DATA_DIR")
        refused_everywhere(alice, project, data_dir, export, needle="DATA_DIR")


# --- serving disabled ------------------------------------------------------------------------
def test_with_serving_disabled_no_storage_can_be_created_validated_or_previewed(alice, project, dirs, settings):
    settings.LOCAL_FILES_SERVING_ENABLED = False
    for export, path in ((False, f"{dirs['a']}/images"), (True, f"{dirs['a']}/out")):
        refused_everywhere(alice, project, path, export, needle="LOCAL_FILES_SERVING_ENABLED")
    assert not LocalFilesImportStorage.objects.exists() and not LocalFilesExportStorage.objects.exists()


@pytest.fixture
def made_while_enabled(alice, project, dirs):
    """An import (blobs) and an export storage of alice's, created while serving was enabled,
    and a task to annotate."""
    a = dirs["a"]
    importing = alice.post(
        endpoint(), {"project": project.id, "path": f"{a}/images", "use_blob_urls": True}, format="json"
    )
    exporting = alice.post(endpoint(True), {"project": project.id, "path": f"{a}/out"}, format="json")
    assert importing.status_code == exporting.status_code == 201, (importing.content, exporting.content)
    assert alice.post(f"/api/projects/{project.id}/import", TASKS, format="json").status_code == 201
    return (
        LocalFilesImportStorage.objects.get(pk=importing.json()["id"]),
        LocalFilesExportStorage.objects.get(pk=exporting.json()["id"]),
    )


def test_with_serving_switched_off_an_existing_storage_neither_validates_syncs_nor_exports(
    alice, project, dirs, made_while_enabled, settings, django_capture_on_commit_callbacks
):
    importing, exporting = made_while_enabled
    settings.LOCAL_FILES_SERVING_ENABLED = False
    response = alice.post(endpoint(False, "validate"), {"id": importing.pk}, format="json")
    assert response.status_code == 400 and "LOCAL_FILES_SERVING_ENABLED" in messages(response)

    result = sync(alice, importing)
    assert result["status"] == "failed" and "LOCAL_FILES_SERVING_ENABLED" in result["traceback"]
    assert not project.tasks.filter(data__image__isnull=False).exists()
    result = sync(alice, exporting, export=True)
    assert result["status"] == "failed" and "LOCAL_FILES_SERVING_ENABLED" in result["traceback"]
    with django_capture_on_commit_callbacks(execute=True):
        task = project.tasks.first()
        assert (
            alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [{"a": 1}]}, format="json").status_code == 201
        )
    assert files_under(f"{dirs['a']}/out") == []


def test_with_serving_switched_off_nothing_is_served(alice, dirs, made_while_enabled, settings):
    link = url(dirs, f"{dirs['a']}/images/cat.jpg")
    assert alice.get(link).status_code == 200
    settings.LOCAL_FILES_SERVING_ENABLED = False
    assert alice.get(link).status_code == 404


# --- one organization's directory, another organization's storage --------------------------------
@pytest.mark.parametrize("through", ["path", "symlink"])
def test_another_organization_cannot_create_validate_or_preview_on_its_directory(bob, bob_project, dirs, through):
    a, b = dirs["a"], dirs["b"]
    where = (lambda name: f"{a}/{name}") if through == "path" else (lambda name: f"{b}/link-{name}")
    refused_everywhere(bob, bob_project, where("images"), export=False)
    refused_everywhere(bob, bob_project, where("tasks"), export=False)
    refused_everywhere(bob, bob_project, where("out"), export=True)
    assert not LocalFilesImportStorage.objects.exists() and not LocalFilesExportStorage.objects.exists()

    # Nor by moving a storage of its own there.
    own = bob.post(endpoint(), {"project": bob_project.id, "path": f"{b}/own"}, format="json")
    assert own.status_code == 201, own.content
    moved = bob.patch(endpoint(False, own.json()["id"]), {"path": where("images")}, format="json")
    assert moved.status_code == 400
    assert LocalFilesImportStorage.objects.get().path == f"{b}/own"


def test_a_member_of_both_organizations_cannot_point_one_at_the_other(alice, project, bob, bob_project, dirs):
    Membership.objects.create(user=alice.user, organization=bob.organization)
    refused_everywhere(alice, bob_project, f"{dirs['a']}/images", export=False)
    refused_everywhere(alice, project, f"{dirs['b']}/own", export=False)
    mine = alice.post(endpoint(), {"project": project.id, "path": f"{dirs['a']}/images"}, format="json")
    assert mine.status_code == 201, mine.content
    moved = alice.patch(endpoint(False, mine.json()["id"]), {"project": bob_project.id}, format="json")
    assert moved.status_code == 400  # the directory stays with its organization
    assert LocalFilesImportStorage.objects.get(pk=mine.json()["id"]).project_id == project.id
    assert (
        alice.post(endpoint(), {"project": bob_project.id, "path": f"{dirs['b']}/own"}, format="json").status_code
        == 201
    )


def test_the_organization_directory_itself_is_refused(alice, project, dirs):
    a = dirs["a"]
    for path in (a, a + "/", f"{a}/images/.."):
        for export in (False, True):
            refused_everywhere(alice, project, path, export)


@pytest.fixture(params=["path", "symlink"])
def intruding(request, bob_project, dirs):
    """Rows of bob's project on alice's directories, named directly or through bob's links."""
    a, b = dirs["a"], dirs["b"]
    where = (lambda name: f"{a}/{name}") if request.param == "path" else (lambda name: f"{b}/link-{name}")
    return {
        "blobs": LocalFilesImportStorage.objects.create(project=bob_project, path=where("images"), use_blob_urls=True),
        "tasks": LocalFilesImportStorage.objects.create(project=bob_project, path=where("tasks")),
        "out": LocalFilesExportStorage.objects.create(project=bob_project, path=where("out")),
        "cat": f"{where('images')}/cat.jpg",
    }


def test_a_stored_row_on_another_organizations_directory_does_not_sync(bob, bob_project, intruding):
    for storage in (intruding["blobs"], intruding["tasks"]):
        result = sync(bob, storage)
        assert result["status"] == "failed", result
        assert "organization" in result["traceback"]
    assert bob_project.tasks.count() == 0


def test_a_stored_row_on_another_organizations_directory_serves_nothing(bob, dirs, intruding):
    for path in (f"{dirs['a']}/images/cat.jpg", intruding["cat"]):
        response = bob.get(url(dirs, path))
        assert response.status_code == 404, path
        assert b"meow" not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_a_stored_row_on_another_organizations_directory_is_never_written(
    bob, bob_project, dirs, intruding, django_capture_on_commit_callbacks
):
    assert bob.post(f"/api/projects/{bob_project.id}/import", TASKS, format="json").status_code == 201
    result = sync(bob, intruding["out"], export=True)
    assert result["status"] == "failed" and "organization" in result["traceback"]
    with django_capture_on_commit_callbacks(execute=True):
        task = bob_project.tasks.first()
        assert bob.post(f"/api/tasks/{task.id}/annotations/", {"result": []}, format="json").status_code == 201
    assert files_under(f"{dirs['a']}/out") == []


@pytest.fixture
def legacy(dirs):
    """A directory right under the document root, as storages were saved before directories
    belonged to organizations."""
    path = os.path.join(dirs["root"], "legacy", "images")
    put(os.path.join(path, "cat.jpg"), b"meow")
    return path


def test_a_row_stored_outside_every_organization_directory_does_not_sync(alice, project, legacy):
    for path in (legacy, "/etc"):
        storage = LocalFilesImportStorage.objects.create(project=project, path=path, use_blob_urls=True)
        result = sync(alice, storage)
        assert result["status"] == "failed", result
    assert project.tasks.count() == 0


def test_a_row_stored_outside_every_organization_directory_serves_nothing(alice, project, dirs, legacy):
    LocalFilesImportStorage.objects.create(project=project, path=legacy, use_blob_urls=True)
    assert alice.get(url(dirs, os.path.join(legacy, "cat.jpg"))).status_code == 404


def test_a_client_made_for_one_organization_is_never_reused_for_another(alice, project, bob_project, dirs):
    own = LocalFilesImportStorage.objects.create(project=project, path=f"{dirs['a']}/images")
    assert shared_client(own).read("cat.jpg") == b"meow"
    intruder = LocalFilesImportStorage.objects.create(project=bob_project, path=f"{dirs['a']}/images")
    with pytest.raises(StorageError, match="organization"):
        shared_client(intruder).read("cat.jpg")


def test_validate_names_the_project_when_it_is_missing(alice, dirs):
    response = alice.post(endpoint(False, "validate"), {"path": f"{dirs['a']}/images"}, format="json")
    assert response.status_code == 400 and "project" in messages(response)


# --- what still works ---------------------------------------------------------------------------
def test_an_organization_uses_its_own_directory_end_to_end(
    alice, project, bob, dirs, django_capture_on_commit_callbacks
):
    a = dirs["a"]
    body = {"project": project.id, "path": f"{a}/images", "use_blob_urls": True}
    assert alice.post(endpoint(False, "validate"), body, format="json").status_code == 200
    preview = alice.post(endpoint(False, "files"), body, format="json")
    assert [f["key"] for f in preview.json()["files"]] == ["cat.jpg"]
    created = alice.post(endpoint(), body, format="json")
    assert created.status_code == 201, created.content
    result = sync(alice, LocalFilesImportStorage.objects.get(pk=created.json()["id"]))
    assert result["status"] == "completed", result["traceback"]
    link = project.tasks.get().data["image"]
    assert link == f"/data/local-files/?d={alice.organization.id}/images/cat.jpg"
    response = alice.get(link)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"meow"
    assert bob.get(link).status_code == 404

    exporting = alice.post(endpoint(True), {"project": project.id, "path": f"{a}/out"}, format="json")
    assert exporting.status_code == 201, exporting.content
    task = project.tasks.get()
    with django_capture_on_commit_callbacks(execute=True):
        annotation = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [{"a": 1}]}, format="json").json()
    assert files_under(f"{a}/out") == [str(annotation["id"])]
    assert Annotation.objects.filter(project=project).count() == 1

"""/data/local-files/: who may read which file, and the paths that must never be served.

Files lie as in production: in the directory of alice's organization,
`<LOCAL_FILES_DOCUMENT_ROOT>/<organization id>/`; tests/test_security_local_files.py covers
storages pointing at another organization's directory."""

import os
import uuid
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(localfiles_document_root, alice, settings):
    """A fresh folder in the directory of alice's organization with images/, images2/ and a
    symlink out (to a file directly under the document root)."""
    settings.LOCAL_FILES_SERVING_ENABLED = True
    folder = os.path.join(localfiles_document_root, str(alice.organization.id), f"view-{uuid.uuid4().hex}")
    os.makedirs(os.path.join(folder, "images"))
    os.makedirs(os.path.join(folder, "images2"))
    with open(os.path.join(folder, "images", "cat.jpg"), "wb") as f:
        f.write(b"meow")
    with open(os.path.join(folder, "images2", "dog.jpg"), "wb") as f:
        f.write(b"woof")
    with open(os.path.join(localfiles_document_root, "outside.txt"), "wb") as f:
        f.write(b"secret")
    os.symlink(os.path.join(localfiles_document_root, "outside.txt"), os.path.join(folder, "images", "link.txt"))
    return folder


@pytest.fixture
def storage(alice, project, root):
    response = alice.post(
        "/api/storages/localfiles/", {"project": project.id, "path": os.path.join(root, "images")}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def url(document_root, path):
    return "/data/local-files/?d=" + quote(os.path.relpath(path, document_root), safe="/")


def test_a_member_reads_a_file_of_a_storage_of_the_project(alice, storage, root, localfiles_document_root):
    response = alice.get(url(localfiles_document_root, os.path.join(root, "images", "cat.jpg")))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"meow"
    assert response["Content-Type"] == "image/jpeg" and response["ETag"]


def test_another_organization_gets_404(bob, storage, root, localfiles_document_root):
    assert bob.get(url(localfiles_document_root, os.path.join(root, "images", "cat.jpg"))).status_code == 404


def test_serving_can_be_disabled(alice, storage, root, localfiles_document_root, settings):
    settings.LOCAL_FILES_SERVING_ENABLED = False
    assert alice.get(url(localfiles_document_root, os.path.join(root, "images", "cat.jpg"))).status_code == 404


def test_d_is_required(alice, storage):
    assert alice.get("/data/local-files/").status_code == 400


@pytest.mark.parametrize(
    "relative",
    [
        "{base}/images/../images2/dog.jpg",  # `..`
        "{base}/images2/dog.jpg",  # a sibling folder that shares the storage's name as a prefix
        "{base}/images/link.txt",  # a symlink leaving the storage's folder
        "outside.txt",  # under the document root but under no storage
        "/etc/passwd",  # absolute
        "../../../../etc/passwd",
    ],
)
def test_paths_outside_every_storage_are_refused(alice, storage, root, localfiles_document_root, relative):
    response = alice.get(
        "/data/local-files/", {"d": relative.format(base=os.path.relpath(root, localfiles_document_root))}
    )
    assert response.status_code == 404
    assert response.content.find(b"secret") == -1 and response.content.find(b"woof") == -1


def test_anonymous_users_get_401(storage, root, localfiles_document_root):
    from rest_framework.test import APIClient

    assert APIClient().get(url(localfiles_document_root, os.path.join(root, "images", "cat.jpg"))).status_code == 401

"""LocalFilesClient and resolve_under against a real temporary directory tree: listing, ranged
reads, atomic writes, deletion, path-safety cases (the same checks guard /data/local-files/)
and the validation messages of check(). The tree is laid out as in production: the storage's
directory lies in its organization's directory `<document root>/<organization id>/`."""

import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone

import pytest

from io_storages.client import AccessDenied, BucketNotFound, ObjectNotFound, RangeNotSatisfiable, StorageError
from io_storages.localfiles.client import LocalFilesClient, UnsafePath, client_for, file_url, resolve_under
from tests.api_errors import error_text

DATA = b"0123456789"
ORGANIZATION = 7  # the organization owning the storage in these tests


@pytest.fixture
def document_root(tmp_path):
    path = tmp_path / "docs"
    path.mkdir()
    return os.path.realpath(path)


@pytest.fixture
def organization_root(document_root):
    """The directory of organization 7: `<document root>/7`."""
    path = os.path.join(document_root, str(ORGANIZATION))
    os.mkdir(path)
    return path


@pytest.fixture
def root(organization_root):
    path = os.path.join(organization_root, "images")
    os.mkdir(path)
    return path


@pytest.fixture
def client(root, document_root, organization_root):
    return LocalFilesClient(root, document_root=document_root, organization_root=organization_root)


def put(base, key, body=DATA):
    path = os.path.join(base, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    return path


def files_in(base):
    return sorted(os.path.relpath(os.path.join(d, n), base) for d, _, names in os.walk(base) for n in names)


# --- listing -------------------------------------------------------------------
def test_list_recursive_and_top_level_in_key_order(client, root):
    for key in ["b.json", "a.json", "a/x.json", "dir/b.json", "dir/sub/c.json", "dira.json"]:
        put(root, key)
    os.mkdir(os.path.join(root, "empty"))

    # "a.json" < "a/x.json" as keys, although the directory "a" sorts before the file "a.json".
    assert [o.key for o in client.list_objects()] == [
        "a.json", "a/x.json", "b.json", "dir/b.json", "dir/sub/c.json", "dira.json"
    ]  # fmt: skip
    assert [o.key for o in client.list_objects(recursive=False)] == ["a.json", "b.json", "dira.json"]
    assert [o.key for o in client.list_objects("dir/")] == ["dir/b.json", "dir/sub/c.json"]
    assert [o.key for o in client.list_objects("dir/", recursive=False)] == ["dir/b.json"]
    assert [o.key for o in client.list_objects("dir")] == ["dir/b.json", "dir/sub/c.json", "dira.json"]
    assert list(client.list_objects("nothing/here/")) == []

    info = next(iter(client.list_objects("a.json")))
    st = os.stat(os.path.join(root, "a.json"))
    assert info.size == 10 and info.last_modified.tzinfo == timezone.utc
    assert info.last_modified.timestamp() == pytest.approx(st.st_mtime)
    assert info.etag == f"{st.st_mtime_ns:x}-{st.st_size:x}"


def test_list_skips_links_out_of_the_root_and_does_not_loop(client, root, organization_root):
    put(root, "real/a.txt")
    secret = put(organization_root, "images2/secret.txt")  # a sibling sharing the root's name
    os.symlink(secret, os.path.join(root, "leak.txt"))
    os.symlink(os.path.dirname(secret), os.path.join(root, "leakdir"))
    os.symlink(os.path.join(root, "real"), os.path.join(root, "alias"))  # inside: followed
    os.symlink(root, os.path.join(root, "real", "loop"))  # back up the tree: not walked again
    os.symlink(os.path.join(root, "gone"), os.path.join(root, "broken.txt"))
    os.mkfifo(os.path.join(root, "fifo"))

    assert [o.key for o in client.list_objects()] == ["alias/a.txt", "real/a.txt"]


def test_list_missing_or_unusable_root(document_root, organization_root):
    def listing(path):
        return list(LocalFilesClient(path, document_root, organization_root=organization_root).list_objects())

    with pytest.raises(BucketNotFound, match="does not exist"):
        listing(os.path.join(organization_root, "nope"))
    with pytest.raises(AccessDenied, match="LOCAL_FILES_DOCUMENT_ROOT"):
        listing("/etc")
    put(document_root, "8/theirs/a.txt")  # another organization's directory
    with pytest.raises(AccessDenied, match="organization"):
        listing(os.path.join(document_root, "8", "theirs"))


# --- reading -------------------------------------------------------------------
def test_open_whole_file_and_ranges(client, root):
    put(root, "f.bin")
    with client.open("f.bin") as stream:
        assert stream.read() == DATA and (stream.start, stream.end, stream.total_size) == (None, None, 10)

    cases = [((2, 5), b"2345", 2, 5), ((7, None), b"789", 7, 9), ((8, 99), b"89", 8, 9), ((None, 3), b"0123", 0, 3)]
    for (start, end), body, first, last in cases:
        with client.open("f.bin", start, end) as stream:
            assert stream.read() == body
            assert (stream.start, stream.end, stream.total_size, stream.content_length) == (first, last, 10, len(body))

    stream = client.open("f.bin", 1, 4)
    assert stream.body.read(100) == b"1234" and stream.body.read(100) == b""  # stops at `end`
    stream.close()

    for start, end in [(10, None), (50, 60), (5, 2), (-1, 3)]:
        with pytest.raises(RangeNotSatisfiable):
            client.open("f.bin", start, end)


def test_open_and_stat_refuse_what_is_not_a_file(client, root):
    put(root, "dir/f.bin")
    os.mkfifo(os.path.join(root, "fifo"))  # must be refused at once, not block on open
    for key in ["missing.bin", "dir", "fifo", "dir/f.bin/x"]:
        with pytest.raises(ObjectNotFound):
            client.open(key)
        with pytest.raises(ObjectNotFound):
            client.stat(key)
    info = client.stat("dir/f.bin")
    assert (info.key, info.size) == ("dir/f.bin", 10)
    assert client.read("dir/f.bin") == DATA


# --- writing -------------------------------------------------------------------
def test_write_is_atomic_and_replaces(client, root):
    client.write("out/nested/1.json", b'{"v": 1}')
    client.write("out/nested/1.json", b'{"v": 2}')
    assert json.loads(client.read("out/nested/1.json")) == {"v": 2}
    assert files_in(root) == ["out/nested/1.json"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(os.path.join(root, "out/nested/1.json")).st_mode) == 0o666 & ~umask

    with ThreadPoolExecutor(8) as pool:  # export writes from a thread pool
        list(pool.map(lambda i: client.write(f"many/{i}", str(i).encode()), range(40)))
    assert len(os.listdir(os.path.join(root, "many"))) == 40


def test_write_and_delete_never_touch_files_outside(client, root, organization_root):
    outside = put(organization_root, "images2/victim.txt")
    os.symlink(outside, os.path.join(root, "link.txt"))
    client.write("link.txt", b"new")  # replaces the link itself
    assert open(outside, "rb").read() == DATA
    assert not os.path.islink(os.path.join(root, "link.txt")) and client.read("link.txt") == b"new"

    os.symlink(os.path.dirname(outside), os.path.join(root, "out"))
    with pytest.raises(UnsafePath):
        client.write("out/x.json", b"{}")
    with pytest.raises(UnsafePath):
        client.write("../images2/x.json", b"{}")
    assert sorted(os.listdir(os.path.dirname(outside))) == ["victim.txt"]

    os.symlink(outside, os.path.join(root, "link2.txt"))
    client.delete("link2.txt")  # removes the link, not its target
    assert os.path.exists(outside) and not os.path.lexists(os.path.join(root, "link2.txt"))


def test_delete(client, root):
    put(root, "a/b.json")
    client.delete("a/b.json")
    assert not os.path.exists(os.path.join(root, "a/b.json"))
    client.delete("a/b.json")  # missing is fine
    client.delete("no/such/dir.json")


# --- path safety ---------------------------------------------------------------------
def test_resolve_under_accepts_paths_inside(root):
    put(root, "a/b.jpg")
    os.symlink("a", os.path.join(root, "alias"))
    real = os.path.realpath(root)
    assert str(resolve_under(root, "a/b.jpg")) == os.path.join(real, "a/b.jpg")
    assert str(resolve_under(root, "alias/b.jpg")) == os.path.join(real, "a/b.jpg")
    assert str(resolve_under(root, "a/new.json")) == os.path.join(real, "a/new.json")  # need not exist


@pytest.mark.parametrize(
    "relative",
    [
        "",
        ".",
        "..",
        "../images2/secret.txt",
        "a/../../x",
        "a/../b.jpg",
        "/etc/passwd",
        "a\0b",
        "leak.txt",
        "leakdir/secret.txt",
        "prefix-link/secret.txt",
    ],
)
def test_resolve_under_refuses_paths_leaving_the_base(root, organization_root, relative):
    secret = put(organization_root, "images2/secret.txt")  # /…/images2 shares a prefix with /…/images
    os.symlink(secret, os.path.join(root, "leak.txt"))
    os.symlink(os.path.dirname(secret), os.path.join(root, "leakdir"))
    os.symlink("../images2", os.path.join(root, "prefix-link"))
    with pytest.raises(UnsafePath) as error:
        resolve_under(root, relative)
    assert isinstance(error.value, ObjectNotFound) and "\0" not in str(error.value)


def test_sibling_directory_with_the_same_prefix_is_not_inside(document_root):
    put(document_root, "images2/x.jpg")
    os.mkdir(os.path.join(document_root, "images"))
    os.symlink(os.path.join(document_root, "images2"), os.path.join(document_root, "images", "s"))
    with pytest.raises(UnsafePath):
        resolve_under(os.path.join(document_root, "images"), "s/x.jpg")


# --- check ----------------------------------------------------------------------------
def test_check_names_each_problem(document_root, organization_root, tmp_path):
    def check(path, prefix=None):
        LocalFilesClient(path, document_root, organization_root=organization_root).check(prefix)

    with pytest.raises(StorageError, match="^Path must be set for Local Files storage$"):  # Label Studio's
        check("")
    with pytest.raises(
        StorageError, match="must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT.*must be an absolute path"
    ):
        check("images")
    outside = tmp_path / "outside"
    outside.mkdir()
    # Label Studio's wording; its example is a directory of the organization.
    subdirectory = re.escape(
        f'Absolute local path "{outside}" must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT="{document_root}" '
        f'by security reasons. For example: "{organization_root}/dataset1".'
    )
    with pytest.raises(AccessDenied, match=f"^{subdirectory}$"):
        check(str(outside))
    with pytest.raises(AccessDenied, match="must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT"):
        check(str(outside / "missing"))  # refused before saying whether it exists
    sibling = document_root + "2"  # /…/docs2 is not inside /…/docs
    os.mkdir(sibling)
    with pytest.raises(AccessDenied, match="must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT"):
        check(sibling)
    os.symlink(str(outside), os.path.join(organization_root, "escape"))
    with pytest.raises(AccessDenied, match="must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT"):
        check(os.path.join(organization_root, "escape"))
    with pytest.raises(
        AccessDenied, match="cannot be the same as LOCAL_FILES_DOCUMENT_ROOT=.*Please add a subdirectory"
    ):
        check(document_root + "/")
    with pytest.raises(AccessDenied, match="cannot be the same as the directory of the storage's organization"):
        check(organization_root + "/")
    # Inside the document root but not inside this organization's directory: another
    # organization's (named, or reached through a link), one directly under the root, or a
    # sibling sharing the directory's name as a prefix; all refused before any existence check.
    put(document_root, "8/theirs/a.json")
    put(document_root, "legacy/a.json")
    put(document_root, f"{ORGANIZATION}0/a.json")
    os.symlink(os.path.join(document_root, "8", "theirs"), os.path.join(organization_root, "theirs"))
    for path in ["8/theirs", "8/missing", "legacy", f"{ORGANIZATION}0", f"{ORGANIZATION}/theirs"]:
        with pytest.raises(AccessDenied, match="must be a subdirectory of the directory of the storage's organization"):
            check(os.path.join(document_root, path), prefix="")
    with pytest.raises(
        BucketNotFound, match=re.escape(f'Absolute local path "{organization_root}/missing" does not exist')
    ):
        check(os.path.join(organization_root, "missing"))
    put(organization_root, "file.txt")
    with pytest.raises(BucketNotFound, match="is not a directory"):
        check(os.path.join(organization_root, "file.txt"))

    empty = os.path.join(organization_root, "empty")
    os.makedirs(os.path.join(empty, "sub"))
    check(empty)  # export storages only need the directory
    with pytest.raises(StorageError, match=re.escape(f"No objects found in '{empty}'")):
        check(empty, prefix="")
    put(empty, "sub/deep.json")
    check(empty, prefix="")  # a file anywhere below counts


def test_an_organization_directory_outside_the_document_root_is_refused(document_root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "images").mkdir(parents=True)
    client = LocalFilesClient(str(elsewhere / "images"), document_root, organization_root=str(elsewhere))
    with pytest.raises(AccessDenied):
        client.check()


def test_a_directory_holding_the_service_data_is_refused(document_root, organization_root, settings):
    settings.DATA_DIR = os.path.join(organization_root, "service", "data")
    put(settings.DATA_DIR, "secret_key")
    for path in ("service", "service/data"):
        client = LocalFilesClient(
            os.path.join(organization_root, path), document_root, organization_root=organization_root
        )
        with pytest.raises(AccessDenied, match="DATA_DIR"):
            client.check()
    put(settings.DATA_DIR, "local-files/a.json")  # below DATA_DIR, as the default document root is
    LocalFilesClient(
        os.path.join(settings.DATA_DIR, "local-files"), document_root, organization_root=organization_root
    ).check()


def test_file_urls_are_relative_to_the_document_root(client, document_root):
    url = file_url(client.root, client.document_root, "sub dir/a#1é.jpg")
    assert url == f"/data/local-files/?d={ORGANIZATION}/images/sub%20dir/a%231%C3%A9.jpg"
    assert client.presign("sub dir/a#1é.jpg", 60) == url  # no signed URLs for local files
    assert file_url(os.path.join(document_root, "a", "b") + "/", document_root + "/", "c.jpg") == (
        "/data/local-files/?d=a/b/c.jpg"
    )


# --- client_for --------------------------------------------------------------------------
def storage_of(organization_id, path):
    from core.models import Organization
    from io_storages.localfiles.models import LocalFilesImportStorage
    from projects.models import Project

    project = None if organization_id is None else Project(organization=Organization(pk=organization_id))
    return LocalFilesImportStorage(project=project, path=path)


def test_client_for_confines_the_storage_to_its_organization(root, document_root, settings):
    settings.LOCAL_FILES_DOCUMENT_ROOT = document_root
    settings.LOCAL_FILES_SERVING_ENABLED = True
    put(root, "a.jpg")
    client = client_for(storage_of(ORGANIZATION, root))
    assert client.organization_root == os.path.join(document_root, str(ORGANIZATION))
    assert client.read("a.jpg") == DATA
    with pytest.raises(AccessDenied, match="organization"):  # at once, before any read
        client_for(storage_of(ORGANIZATION + 1, root))
    with pytest.raises(StorageError, match="project"):
        client_for(storage_of(None, root))
    settings.LOCAL_FILES_SERVING_ENABLED = False
    with pytest.raises(AccessDenied, match="LOCAL_FILES_SERVING_ENABLED"):
        client_for(storage_of(ORGANIZATION, root))


# --- API ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_api_refuses_a_path_outside_the_document_root(alice, project, localfiles_document_root, tmp_path, settings):
    settings.LOCAL_FILES_SERVING_ENABLED = True
    for export in ("", "export/"):
        response = alice.post(
            f"/api/storages/{export}localfiles", {"project": project.id, "path": str(tmp_path)}, format="json"
        )
        assert "LOCAL_FILES_DOCUMENT_ROOT" in error_text(response, 400)

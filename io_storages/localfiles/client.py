"""Local files storage: a directory on the server's own disk behind `StorageClient`.

Directories belong to organizations: organization N owns `<LOCAL_FILES_DOCUMENT_ROOT>/N/`
(`organization_root()`), and a storage's directory (`root`) must lie strictly inside the
directory of its project's organization, symlinks resolved. `client_for()` refuses to make a
client while LOCAL_FILES_SERVING_ENABLED is off or for a storage without a project, and the
client checks containment again on every call. Every path a key or a `?d=` parameter names
goes through `resolve_under()`, the single place that decides whether a path stays inside
its base directory (the `/data/local-files/` view uses it too). Filesystem errors are mapped
to the interface's `StorageError` subclasses by `LocalFilesClient._errors()`.

There are no signed URLs for local files: a task holds `/data/local-files/?d=<path relative
to the document root>` and the view checks the user's access on every request.
"""

from __future__ import annotations

import os
import stat
import uuid
from contextlib import closing, contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import quote

from django.conf import settings

from io_storages.client import (
    AccessDenied,
    BucketNotFound,
    LimitedBody,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    RangeNotSatisfiable,
    StorageClient,
    StorageError,
)

URL_PREFIX = "/data/local-files/?d="


class UnsafePath(ObjectNotFound):
    """A relative path refused because it could leave its base directory.

    A subclass of ObjectNotFound: whoever treats it as "no such file" reveals nothing more.
    """


def resolve_under(base: str, relative: str, *, follow_symlinks: bool = True) -> Path:
    """The real path of `base/relative`, refusing anything that is not strictly inside `base`.

    Refused: empty paths, NUL bytes, absolute paths, `..` components, and paths whose real
    location (symlinks resolved) is not below realpath(base) — compared component by
    component, so `/data/images2` is not inside `/data/images`.

    With `follow_symlinks=False` the last component is not resolved: the result is the
    directory entry itself (writing or deleting it replaces or removes a symlink, never its
    target), while its parent directories still must resolve inside `base`.
    """
    shown = relative.replace("\0", "\\0") if isinstance(relative, str) else relative
    if not relative:
        raise UnsafePath("Empty file path")
    if "\0" in relative:
        raise UnsafePath(f"Refused file path '{shown}': it contains a NUL byte")
    if relative.startswith("/") or os.path.isabs(relative):
        raise UnsafePath(f"Refused file path '{shown}': absolute paths are not allowed")
    if ".." in relative.split("/"):
        raise UnsafePath(f"Refused file path '{shown}': '..' is not allowed")
    real_base = Path(os.path.realpath(base))
    lexical = real_base / relative  # pathlib drops "." components and a trailing "/"
    if follow_symlinks:
        target = Path(os.path.realpath(lexical))
    else:
        target = Path(os.path.realpath(lexical.parent)) / lexical.name
    if target == real_base or not target.is_relative_to(real_base):
        raise UnsafePath(f"Refused file path '{shown}': it is not inside '{base}'")
    return target


def organization_root(document_root: str, organization_id) -> str:
    """The directory organization `organization_id` owns: `<document root>/<id>`. Named by the
    id, which never changes nor is reused, unlike a title."""
    return os.path.join(document_root, str(int(organization_id)))


def strictly_inside(path, base) -> bool:
    """Whether `path` is below `base` (both real paths), component by component."""
    path, base = Path(path), Path(base)
    return path != base and path.is_relative_to(base)


def protected_paths() -> list[Path]:
    """Real paths of the service's own files (database, secret key): no storage may hold them."""
    paths = [Path(os.path.realpath(settings.DATA_DIR))]
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and database.get("NAME") not in (None, "", ":memory:"):
        paths.append(Path(os.path.realpath(database["NAME"])))
    return paths


def require_enabled() -> None:
    """Raise AccessDenied (a StorageError) unless local-files storages are enabled here."""
    if not settings.LOCAL_FILES_SERVING_ENABLED:
        raise AccessDenied(  # Label Studio's first sentence, then ours
            "Serving local files from the host filesystem can be a security risk, so "
            "LOCAL_FILES_SERVING_ENABLED is disabled by default. Local files storages are disabled on "
            "this server: the operator must set LOCAL_FILES_SERVING_ENABLED=true to create, sync or serve them"
        )


def file_url(root: str, document_root: str, key: str) -> str:
    """`/data/local-files/?d=<path relative to the document root>` of `key` in `root`: what
    blob tasks hold (local files have no `scheme://` URIs)."""
    relative = os.path.relpath(os.path.join(root, key), document_root)
    if relative == ".." or relative.startswith("../"):
        # root and document root spelled through different symlinks: compare real paths.
        relative = os.path.relpath(os.path.join(os.path.realpath(root), key), os.path.realpath(document_root))
    return URL_PREFIX + quote(relative.replace(os.sep, "/"), safe="/")


def _is_utf8(name: str) -> bool:
    # Undecodable bytes in a file name become lone surrogates, which no database or JSON
    # response accepts: such files cannot be keys.
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        # Changes whenever the file is rewritten (mtime in ns) or resized; costs no read.
        etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
        content_type=None,  # files have none: the proxy guesses it from the name
    )


class LocalFilesClient(StorageClient):
    """Files below `root`, a directory strictly inside `organization_root` (the directory of
    the storage's organization), itself inside `document_root` (LOCAL_FILES_DOCUMENT_ROOT).

    Holds no open handles or mutable state, so one instance is safe to share between threads.
    """

    def __init__(self, root: str, document_root: str, *, organization_root: str):
        super().__init__(root)
        self.root = root
        self.document_root = document_root
        self.organization_root = organization_root

    # --- paths and errors ------------------------------------------------------
    def _real_root(self) -> Path:
        """realpath(root), after checking that root is an absolute path strictly inside the
        document root. Checked on every call, not only when the storage was saved: the setting,
        the stored path or a symlink on the way may have changed since.

        Messages start with Label Studio's for the same rule (`Absolute local path "..." must
        be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT=...`); its example directory is one of
        the organization's, the only kind a storage here may use."""
        root, document_root = self.root, self.document_root
        own = self.organization_root
        example = f'For example: "{os.path.join(own, "dataset1")}".'
        outside = (
            f'Absolute local path "{root}" must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT="{document_root}" '
            "by security reasons."
        )
        if not root:
            raise StorageError("Path must be set for Local Files storage")
        if not os.path.isabs(root):
            raise StorageError(f"{outside} {example} It must be an absolute path.")
        real_root = Path(os.path.realpath(root))
        real_document_root = Path(os.path.realpath(document_root))
        if real_root == real_document_root:
            raise AccessDenied(
                f'Absolute local path "{root}" cannot be the same as LOCAL_FILES_DOCUMENT_ROOT="{document_root}" '
                f"by security reasons. Please add a subdirectory. {example}"
            )
        if not real_root.is_relative_to(real_document_root):
            raise AccessDenied(f"{outside} {example}")
        # The organization's directory is compared by real path too: a symlink (or a path
        # stored before directories belonged to organizations) that leads into another
        # organization's directory, or out of every one, is refused.
        real_own = Path(os.path.realpath(own))
        if real_root == real_own:
            raise AccessDenied(
                f'Absolute local path "{root}" cannot be the same as the directory of the storage\'s '
                f'organization ("{own}") by security reasons. Please add a subdirectory. {example}'
            )
        if not strictly_inside(real_own, real_document_root) or not strictly_inside(real_root, real_own):
            raise AccessDenied(
                f'Absolute local path "{root}" must be a subdirectory of the directory of the storage\'s '
                f'organization ("{own}", LOCAL_FILES_DOCUMENT_ROOT/<organization id>) by security reasons. {example}'
            )
        for protected in protected_paths():
            if protected.is_relative_to(real_root):
                raise AccessDenied(
                    f"Path '{root}' holds the service's own data (DATA_DIR or its database): "
                    "choose a directory that does not contain it"
                )
        return real_root

    def _path(self, key: str, follow_symlinks: bool = True) -> Path:
        return resolve_under(self._real_root(), key, follow_symlinks=follow_symlinks)

    @contextmanager
    def _errors(self, key: Optional[str] = None):
        """Translate OSError; `key` None means the error concerns the storage's directory."""
        where = f"'{key}' in '{self.root}'" if key is not None else f"'{self.root}'"
        try:
            yield
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            if key is not None:
                raise ObjectNotFound(f"File {where} does not exist") from None
            if isinstance(e, NotADirectoryError):
                raise BucketNotFound(f'Absolute local path "{self.root}" is not a directory') from None
            raise BucketNotFound(f'Absolute local path "{self.root}" does not exist') from None  # Label Studio's
        except PermissionError:
            raise AccessDenied(f"Permission denied on {where}: the server process cannot access it") from None
        except OSError as e:
            raise StorageError(f"Cannot access {where}: {e.strerror or type(e).__name__}") from None

    # --- StorageClient ---------------------------------------------------------
    def list_objects(self, prefix: str = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        # A prefix is a directory plus the start of a name in it, as in S3: "d/a" lists d/a.jpg
        # and, recursively, d/ab/c.jpg.
        directory, _, start = (prefix or "").rpartition("/")
        real_root = self._real_root()
        with self._errors():
            os.stat(real_root)  # a missing root is BucketNotFound; a missing sub-directory lists nothing
            top = resolve_under(real_root, directory) if directory else real_root
            key_prefix = directory + "/" if directory else ""
            yield from self._walk(real_root, top, key_prefix, start, recursive, ancestors=())

    def _walk(self, real_root, directory, key_prefix, start, recursive, ancestors):
        """Files of `directory` (and below it when `recursive`) in key order, one directory
        read at a time."""
        try:
            with os.scandir(directory) as scan:
                entries = [e for e in scan if e.name.startswith(start) and _is_utf8(e.name)]
            here = os.stat(directory)
        except (FileNotFoundError, NotADirectoryError):
            if key_prefix:  # a prefix directory that does not exist, or one removed meanwhile
                return
            raise
        ancestors += ((here.st_dev, here.st_ino),)
        # Keys below a directory all start with "name/", so it sorts as that: the listing is
        # then in full-key order ("a.jpg" before "a/x.jpg"), like S3's.
        entries.sort(key=lambda e: e.name + "/" if e.is_dir() else e.name)
        for entry in entries:
            if entry.is_symlink() and not Path(os.path.realpath(entry.path)).is_relative_to(real_root):
                continue  # a link out of the storage's directory: never listed nor followed
            key = key_prefix + entry.name
            try:
                if entry.is_dir():
                    st = entry.stat()
                    # A symlink to a directory above would loop forever.
                    if recursive and (st.st_dev, st.st_ino) not in ancestors:
                        yield from self._walk(real_root, entry.path, key + "/", "", True, ancestors)
                elif entry.is_file():  # sockets, FIFOs and broken links are not objects
                    yield _info(key, entry.stat())
            except FileNotFoundError:
                continue  # deleted while we were listing

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with self._errors(key):
            st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"'{key}' in '{self.root}' is not a file")
        return _info(key, st)

    def _open_range(self, key: str, start: Optional[int], end: Optional[int]) -> ObjectStream:
        path = self._path(key)
        with self._errors(key):
            # O_NONBLOCK: opening a FIFO planted under the root must not hang the worker (it is
            # refused just below); it changes nothing for regular files.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            file = os.fdopen(fd, "rb")
        try:
            with self._errors(key):
                st = os.fstat(file.fileno())  # of the file we opened, even if replaced meanwhile
                if not stat.S_ISREG(st.st_mode):
                    raise ObjectNotFound(f"'{key}' in '{self.root}' is not a file")
                size, first, last = st.st_size, None, None
                if start is not None:
                    if start >= size:
                        raise RangeNotSatisfiable(f"Range {start}-{end} is past the end of '{key}' ({size} bytes)")
                    first, last = start, size - 1 if end is None else min(end, size - 1)
                    file.seek(first)
                length = size if first is None else last - first + 1
        except BaseException:
            file.close()
            raise
        return ObjectStream(info=_info(key, st), body=LimitedBody(file, length), start=first, end=last, total_size=size)

    def presign(self, key: str, ttl_seconds: int, content_type: Optional[str] = None) -> str:
        # Local files have no signed URLs: the URL is the same for everyone and the
        # /data/local-files/ view checks the user's access to the file on every request.
        return file_url(self.root, self.document_root, key)

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        # content_type is not stored: a file has none, the name decides when it is served.
        # follow_symlinks=False: a symlink planted at `key` is replaced, its target untouched.
        path = self._path(key, follow_symlinks=False)
        with self._errors(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write a temporary file next to the target, then rename it over the target:
            # readers see the old or the new content, never a partial one. Created with
            # os.open(..., 0o666) rather than NamedTemporaryFile (always 0600), so that
            # exported files get the usual permissions from the umask.
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(temporary)
                raise

    def delete(self, key: str) -> None:
        path = self._path(key, follow_symlinks=False)  # a symlink is removed, not its target
        with self._errors(key):
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                pass  # already gone

    def check(self, prefix: Optional[str] = None) -> None:
        # _real_root() first: whether a path outside the document root exists is none of the
        # user's business, so containment is refused before anything else is looked at.
        real_root = self._real_root()
        with self._errors():
            st = os.stat(real_root)
        if not stat.S_ISDIR(st.st_mode):
            raise BucketNotFound(f'Absolute local path "{self.root}" is not a directory')
        if prefix is not None:
            with closing(self.list_objects(prefix, recursive=True)) as objects:
                if next(objects, None) is None:
                    where = os.path.join(self.root, prefix) if prefix else self.root
                    raise StorageError(f"No objects found in '{where}': it holds no files")


def client_for(storage) -> LocalFilesClient:
    """The client of `storage`, confined to its project's organization's directory; refused
    while local-files storages are disabled, and for a storage without a project (whose
    organization, hence directory, is unknown: validating one needs `project`)."""
    require_enabled()
    organization_id = storage.organization_id
    if organization_id is None:
        raise StorageError(
            "Pass the project: a local files storage may only use a directory of its "
            "project's organization (LOCAL_FILES_DOCUMENT_ROOT/<organization id>)"
        )
    document_root = settings.LOCAL_FILES_DOCUMENT_ROOT
    client = LocalFilesClient(
        storage.path, document_root=document_root, organization_root=organization_root(document_root, organization_id)
    )
    client._real_root()  # refused now, not object by object: a sync then fails with the reason
    return client

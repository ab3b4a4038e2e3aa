"""Label Studio's local-files cases, moved into one organization's directory.

Label Studio's fixtures (tests/conftest.py) put two copies of a sample image in its temporary
directory, `/tmp/files/test_image1.png` and `/tmp/files/subdir/test_image2.png`
(`local_files_storage`), and make the document root `/` (`local_files_document_root_tempdir`)
or `/tmp/files` (`local_files_document_root_subdir`). Its cases then name absolute paths
(a storage's `path`) and paths relative to that root (`/data/local-files/?d=`, where a
leading `/` is dropped), through `tests.utils:os_independent_path`.

Here a storage may only use the directory of its project's organization,
`<LOCAL_FILES_DOCUMENT_ROOT>/<organization id>/` (docs/security.md), so that directory plays
Label Studio's `/`: the files are created under `<organization dir>/tmp/files/`, and

  * a storage path `/tmp/files/subdir` that a case sends becomes `<organization dir>/tmp/files/subdir`;
  * `?d=<path>` becomes `?d=<organization id>/<path>` (root `/`) or
    `?d=<organization id>/tmp/files/<path>` (root `/tmp/files`), and so do the `?d=` links
    the cases expect back;
  * the absolute paths a case expects back (`storage_filename`) get the same prefix as the
    paths it sends.

The variables keep Label Studio's values (`/tmp/...`), which its regexes name; they are
translated where they are sent and expected, never in between.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

LS_TEMPDIR = "/tmp"  # tempfile.gettempdir() of Label Studio's (Linux) runs: the cases' regexes name it
LS_ROOTS = {"local_files_document_root_tempdir": "/", "local_files_document_root_subdir": "/tmp/files"}
SAMPLE = "tests/test_suites/samples/test_image.png"  # what local_files_storage copies, in the wheel
SERVE = "/data/local-files/"
STORAGE_PATH = re.compile(r"/api/storages/(export/)?localfiles\b")


def os_independent_path(_response, path, add_tempdir=False):
    """Label Studio's tests.utils:os_independent_path, on its temporary directory."""
    full = PurePosixPath(LS_TEMPDIR) / path if add_tempdir else PurePosixPath(path)
    return {
        "os_independent_path": str(full),
        "os_independent_path_parent": str(full.parent),
        "os_independent_path_tmpdir": LS_TEMPDIR,
    }


EXT = {"tests.utils:os_independent_path": os_independent_path}


@dataclass(frozen=True)
class LocalFiles:
    document_root: str  # our LOCAL_FILES_DOCUMENT_ROOT
    organization_id: int
    ls_root: str = "/"  # Label Studio's LOCAL_FILES_DOCUMENT_ROOT in the case

    @property
    def organization_dir(self) -> str:
        return os.path.join(self.document_root, str(self.organization_id))

    def path(self, ls_path: str) -> str:
        """Our absolute path of Label Studio's absolute path `ls_path`."""
        return self.organization_dir + posixpath.normpath(ls_path)

    @property
    def d_prefix(self) -> str:
        """What our `?d=` paths have in front of Label Studio's."""
        return os.path.relpath(self.path(self.ls_root), self.document_root)

    def d(self, ls_d: str) -> str:
        return f"{self.d_prefix}/{posixpath.normpath(ls_d).lstrip('/')}"

    def provide(self, sample: bytes) -> None:
        """Label Studio's local_files_storage fixture, in the organization's directory (made
        here as an operator would: the service never creates it)."""
        tmp = self.path(LS_TEMPDIR)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(os.path.join(tmp, "files", "subdir"))
        for name in ("files/test_image1.png", "files/subdir/test_image2.png"):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(sample)

    def prepare(self, request: dict) -> dict:
        """A request as the case sends it -> the same request in our directories."""
        request = dict(request)
        parts = urlsplit(request["url"])
        if parts.path.rstrip("/") == SERVE.rstrip("/"):
            query = [(k, self.d(v) if k == "d" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
            request["url"] = urlunsplit(parts._replace(query=urlencode(query, safe="/")))
        elif STORAGE_PATH.search(parts.path):
            for body in ("json", "data"):
                if isinstance(request.get(body), dict) and str(request[body].get("path", "")).startswith("/"):
                    request[body] = {**request[body], "path": self.path(request[body]["path"])}
        return request

    def expected_pattern(self, pattern: str) -> str:
        """A regex of an expected `?d=` link, for our links."""
        return pattern.replace(r"\?d=", r"\?d=" + re.escape(self.d_prefix + "/"))

    def expected_path(self, value: str) -> str:
        """An absolute path the case expects back (under Label Studio's temporary directory)."""
        return self.path(value) if value.startswith(LS_TEMPDIR + "/") else value

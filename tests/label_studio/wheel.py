"""The `label-studio` wheel, downloaded once with pip into .cache/label-studio/ (git-ignored),
and the case files read straight out of it: nothing of Label Studio is copied into the
repository. The wheel is pinned by version and by its sha256, so a different file is never
used silently."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, List, Tuple

LS_VERSION = "1.23.2"
WHEEL_NAME = f"label_studio-{LS_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "c575b2552d0b271554224c5e56ab2ce9449c6e62a0b4851bc8c706d8fe651137"
PACKAGE = "label_studio/"  # the files' prefix in the zip
TESTS = PACKAGE + "tests/"
SHARED_STAGES = TESTS + "shared_stages.yml"

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "label-studio"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_path() -> Path:
    """The cached wheel, downloaded first if it is missing or not the pinned file.

    `pip download` runs into a temporary directory beside the cache and the checked file is
    renamed into place, so an interrupted or concurrent download never leaves half a wheel.
    """
    path = CACHE_DIR / WHEEL_NAME
    if path.exists() and _sha256(path) == WHEEL_SHA256:
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="download-") as tmp:
        argv = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            f"label-studio=={LS_VERSION}",
            "-d",
            tmp,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        got = Path(tmp) / WHEEL_NAME
        if done.returncode != 0 or not got.exists():
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        digest = _sha256(got)
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"{WHEEL_NAME} has sha256 {digest}, expected {WHEEL_SHA256}")
        os.replace(got, path)
    return path


class Wheel:
    """Read access to the files of the wheel."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = zipfile.ZipFile(path)

    def read(self, name: str) -> bytes:
        return self._zip.read(name)

    def case_files(self) -> List[str]:
        """Every `*.tavern.yml` under label_studio/tests/, sorted."""
        return sorted(n for n in self._zip.namelist() if n.startswith(TESTS) and n.endswith(".tavern.yml"))

    def documents(self, name: str) -> Iterator[dict]:
        from tests.label_studio.tavern import load_all

        for document in load_all(self.read(name).decode("utf-8")):
            if document:
                yield document

    def shared_stages(self) -> dict:
        """Stage id -> stage, from tests/shared_stages.yml (tavern's global configuration)."""
        (config,) = list(self.documents(SHARED_STAGES))
        return {stage["id"]: stage for stage in config["stages"]}

    def sample(self, relative: str) -> Tuple[str, bytes]:
        """(file name, bytes) of a file a case uploads, named relative to label_studio/ (the
        directory Label Studio's own test run starts in)."""
        return os.path.basename(relative), self.read(PACKAGE + relative)


@functools.lru_cache(maxsize=None)
def wheel() -> Wheel:
    return Wheel(wheel_path())

"""Browser tests of the console: headless Chromium from Debian's packages (`chromium`,
`chromium-driver`) driven by Selenium, against pytest-django's live server, moto and, when
Redis answers, a real `rqworker` subprocess, so that syncs run in the background while the
page polls them.

Without a browser on the machine these tests are skipped with the reason (scripts/test.sh
installs one when it can); that is the only reason they skip."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from tests.fixtures.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
MEDIA = Path(__file__).resolve().parent / "media"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Where tests save screenshots of the main screens (scripts/screenshots.sh: docs/screenshots).
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
WAIT = 30  # seconds any one thing may take to show up on a page


def missing_browser():
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-test.txt)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} not found: install Debian's {package} (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture(scope="session")
def chromium(django_db_setup):
    """One headless Chromium for the session. It quits before the test database is dropped
    (it depends on it): its keep-alive connections hold the live server's database sessions."""
    reason = missing_browser()
    if reason:
        pytest.skip(f"No browser for the console tests: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    # The performance log carries the Network events: which requests got a 206.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """The Chromium session bound to this test's live server, with the few steps tests share."""

    def __init__(self, driver, base_url):
        self.driver, self.base_url = driver, base_url

    def open(self, path):
        self.driver.get(self.base_url + path)

    def wait(self, condition, timeout=WAIT, message=""):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        # Cards are re-rendered while a sync runs: an element found a moment ago may be gone.
        wait = WebDriverWait(self.driver, timeout, 0.1, ignored_exceptions=[StaleElementReferenceException])
        return wait.until(condition, message)

    def storage_card(self, css):
        """The storage card `css` as the page shows it now: status, badge and facts by name."""
        return self.js(
            "const el = document.querySelector(arguments[0]); if (!el) return null;"
            "const facts = {}; for (const f of el.querySelectorAll('[data-fact]'))"
            " facts[f.dataset.fact] = f.querySelector('dd').textContent;"
            "return {status: el.dataset.status, badge: el.querySelector('.badge').textContent, facts,"
            " errors: [...el.querySelectorAll('.errors li')].map((li) => li.textContent),"
            " keys: [...el.querySelectorAll('.errors .error-key')].map((k) => k.textContent)};",
            css,
        )

    def wait_for_status(self, css, *statuses, timeout=120, seen=None):
        """Wait until the card `css` has one of `statuses`; return its state. `seen` collects
        every (status, created) the page showed meanwhile."""

        def reached(driver):
            state = self.storage_card(css)
            if state and seen is not None:
                seen.add((state["status"], state["facts"].get("created")))
            return state if state and state["status"] in statuses else False

        return self.wait(reached, timeout, f"{css} never reached {statuses} (seen {seen})")

    def find(self, css, timeout=WAIT):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout, f"no visible {css}")

    def all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text_in(self, css, text, timeout=WAIT):
        """Wait until the element `css` shows `text`; return the element."""
        from selenium.webdriver.common.by import By

        def shows(driver):
            for el in driver.find_elements(By.CSS_SELECTOR, css):
                if text in el.text:
                    return el
            return False

        return self.wait(shows, timeout, f"{css} never showed {text!r}")

    def fill(self, css, value):
        el = self.find(css)
        el.clear()
        el.send_keys(value)
        return el

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def login(self, email, password="pw"):
        self.open("/login/")
        self.fill("#id_username", email)
        self.fill("#id_password", password)
        self.find("button[type=submit]").click()
        self.find(".who")

    def logout(self):
        self.find(".logout button").click()
        self.find("#id_username")

    def network_responses(self):
        """Network.responseReceived events since the last call: [{url, status, headers}], header
        names in lower case."""
        out = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.responseReceived":
                response = message["params"]["response"]
                out.append(
                    {
                        "url": response["url"],
                        "status": response["status"],
                        "headers": {k.lower(): v for k, v in response.get("headers", {}).items()},
                    }
                )
        return out

    def script_errors(self):
        """Uncaught errors the page's scripts raised since the last call."""
        return [e["message"] for e in self.driver.get_log("browser") if "Uncaught" in e["message"]]

    def screenshot(self, name, width=None, height=None):
        """docs/screenshots/<name>.png when CONSOLE_SCREENSHOTS names the directory."""
        if not SCREENSHOTS:
            return
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        if width:
            self.driver.set_window_size(width, height)
            time.sleep(0.3)  # layout settles (screenshots only, never in an assertion)
        self.driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))
        if width:
            self.driver.set_window_size(1400, 1000)


@pytest.fixture
def browser(chromium, live_server, emulators_on_loopback):
    """A logged-out browser on this test's live server (moto on loopback is allowed)."""
    b = Browser(chromium, live_server.url)
    b.open("/login/")
    chromium.delete_all_cookies()
    b.network_responses()
    b.script_errors()
    yield b
    errors = b.script_errors()
    assert not errors, f"the console's scripts failed: {errors}"


def _database_url():
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgresql://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def background_jobs(settings, transactional_db, tmp_path):
    """Syncs run in the background, as in production, while the page polls the storage: with
    Redis, the web enqueues (RQ_ASYNC) and a real `manage.py rqworker` subprocess on this
    test's database runs the jobs; without Redis, the service's own in-process pool runs them
    (JOBS_IN_PROCESS=background). Only on SQLite, whose in-memory test database other threads
    and processes cannot see, jobs run in the request, and the page shows their end state.
    Yields how the jobs run: "rqworker", "pool" or "foreground"."""
    from core import jobs

    settings.STORAGE_SYNC_BATCH_SIZE = 100  # progress after every 100 objects
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield "foreground"
        return
    if not jobs.redis_available():
        settings.JOBS_IN_PROCESS = "background"
        yield "pool"
        return
    settings.RQ_ASYNC = True
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "RQ_ASYNC": "true",
        "SECRET_KEY": settings.SECRET_KEY,
        "STORAGE_SECRET_KEYS": ",".join(settings.STORAGE_SECRET_KEYS),
        "SSRF_PROTECTION_ENABLED": "false",
        "STORAGE_SYNC_BATCH_SIZE": "100",
        "DB_CONN_MAX_AGE": "0",
        "DATA_DIR": str(tmp_path / "worker-data"),
    }
    log = open(tmp_path / "rqworker.log", "wb")
    queues = sorted({settings.STORAGE_SYNC_QUEUE, settings.STORAGE_EXPORT_QUEUE})
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", *queues, "--worker-class", "rq.worker.SimpleWorker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield "rqworker"
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        if worker.returncode not in (0, -15, 143):
            print((tmp_path / "rqworker.log").read_text(errors="replace")[-4000:])


def png(width=8, height=6, rgb=(200, 60, 30)):
    """A small valid PNG image (what `naturalWidth` will report is `width`)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def video():
    """A 4 s VP8 WebM clip, 160x120 (tests/browser/media/clip.webm, made with ffmpeg's testsrc)."""
    return (MEDIA / "clip.webm").read_bytes()


__all__ = ["Browser", "png", "video", "free_port"]

"""The job runner every background job goes through.

When Redis is configured and answers, jobs are enqueued on django-rq queues and run by
`python manage.py rqworker`. Otherwise (the embedded default) they run in a small thread
pool of this process (`JOBS_WORKERS` threads): the caller gets a job id at once and the job
runs after the caller's transaction commits. `JOBS_IN_PROCESS=foreground` runs them in the
caller's thread instead, before `enqueue` returns (tests, one-off scripts). Callers don't
care which: they pass an importable function and its arguments.

Periodic jobs (`PERIODIC_JOBS`: dotted path -> seconds) run from `manage.py rqcron
core.cron` with Redis, and from a scheduler thread of the web process otherwise
(`start_in_process_scheduler`, called by core/wsgi.py).
"""

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import django_rq
import redis
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils.module_loading import import_string
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

logger = logging.getLogger(__name__)

_REDIS_CHECK_TTL = 10.0  # seconds a reachability answer is trusted
_redis_state = {"checked_at": 0.0, "ok": False}


def redis_available() -> bool:
    """True when REDIS_URL is set and the server answers a ping (cached briefly)."""
    if not settings.REDIS_URL:
        return False
    now = time.monotonic()
    if now - _redis_state["checked_at"] > _REDIS_CHECK_TTL:
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=1).ping()
            _redis_state["ok"] = True
        except redis.RedisError as e:
            if _redis_state["ok"] or not _redis_state["checked_at"]:
                logger.warning("Redis at REDIS_URL is not reachable (%s): jobs run in-process", e)
            _redis_state["ok"] = False
        _redis_state["checked_at"] = now
    return _redis_state["ok"]


def forget_redis_state():
    """Re-check Redis on next use (tests, settings changes)."""
    _redis_state.update(checked_at=0.0, ok=False)


def get_queue(name=None):
    # "auto": enqueue at once, so the caller gets the job id to record; callers that need the
    # worker to see their rows enqueue after their transaction commits.
    return django_rq.get_queue(name or "default", is_async=settings.RQ_ASYNC, commit_mode="auto")


def enqueue(func, *args, queue_name="default", job_timeout=None, **kwargs):
    """Run `func(*args, **kwargs)` in the background; return the job id (None when it ran in
    the foreground). In-process failures are logged, never raised: the caller goes on."""
    if redis_available():
        job = get_queue(queue_name).enqueue(func, *args, job_timeout=job_timeout, **kwargs)
        return job.id
    if settings.JOBS_IN_PROCESS == "foreground":
        _run_logged(func, args, kwargs)
        return None
    return _pool.submit(func, args, kwargs)


def _run_logged(func, args, kwargs):
    try:
        func(*args, **kwargs)
    except Exception:
        logger.exception("In-process job %s failed", getattr(func, "__name__", func))


class _Pool:
    """The in-process workers: a bounded thread pool whose jobs have ids like RQ's.

    An id is `local:<host>:<pid>:<uuid>`, so any process can tell whether the job's process
    is still alive (`job_state`): a web process that died mid-sync is noticed at once by the
    health check instead of after the ping timeout.
    """

    PREFIX = "local"

    def __init__(self):
        self._executor = None
        self._lock = threading.Lock()
        self._states = {}  # job id -> "queued" | "started"; finished jobs are dropped

    def submit(self, func, args, kwargs):
        job_id = f"{self.PREFIX}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=settings.JOBS_WORKERS, thread_name_prefix="job")
            self._states[job_id] = "queued"
        # The job reads rows the caller may not have committed yet.
        transaction.on_commit(lambda: self._executor.submit(self._run, job_id, func, args, kwargs))
        return job_id

    def _run(self, job_id, func, args, kwargs):
        self._states[job_id] = "started"
        close_old_connections()
        try:
            _run_logged(func, args, kwargs)
        finally:
            self._states.pop(job_id, None)
            connections.close_all()  # this thread's connections only

    def state(self, job_id):
        """'queued' / 'started' for a live job, None when it is gone, 'unknown' when another
        live process (or another host) owns it."""
        _, host, pid, _ = job_id.split(":", 3)
        if host != socket.gethostname():
            return "unknown"
        if int(pid) == os.getpid():
            return self._states.get(job_id)
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return "unknown"


_pool = _Pool()


def is_in_process(job_id):
    """True for the id of a job of the in-process pool (any process's)."""
    return job_id.startswith(_Pool.PREFIX + ":")


def job_state(job_id):
    """Status of a job as a string ('queued', 'started', 'finished', 'failed', ...;
    'unknown' when it cannot be told: an in-process job of another live process, Redis not
    answering), or None when the job is gone: it expired, was deleted, Redis was flushed,
    or the process running it died."""
    if not job_id:
        return None
    if is_in_process(job_id):
        return _pool.state(job_id)
    if not redis_available():
        return "unknown"  # Redis is down: the job may well be alive
    try:
        job = Job.fetch(job_id, connection=get_queue().connection)
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=False)
    return getattr(status, "value", status)


def queue_has_workers(queue_name):
    """True when at least one RQ worker listens to `queue_name` (Redis only)."""
    workers = Worker.all(connection=get_queue(queue_name).connection)
    return any(queue_name in worker.queue_names() for worker in workers)


def all_queue_names():
    """Every queue the service uses, most urgent first: what a bare `rqworker` listens to."""
    return list(settings.RQ_QUEUES)


# --- periodic jobs ------------------------------------------------------------
def periodic_jobs():
    """(function, seconds) for each entry of PERIODIC_JOBS."""
    return [(import_string(path), seconds) for path, seconds in settings.PERIODIC_JOBS.items()]


_scheduler = {"thread": None}
_scheduler_lock = threading.Lock()


def start_in_process_scheduler():
    """Run PERIODIC_JOBS from a daemon thread of this process, each through `enqueue`, when
    jobs run in-process (with Redis, `manage.py rqcron core.cron` schedules them). Started
    once per process; returns the thread, or None when not needed."""
    if settings.JOBS_IN_PROCESS != "background" or redis_available() or not settings.PERIODIC_JOBS:
        return None
    with _scheduler_lock:
        if _scheduler["thread"] is None:
            thread = threading.Thread(target=_scheduler_loop, name="job-scheduler", daemon=True)
            _scheduler["thread"] = thread
            thread.start()
    return _scheduler["thread"]


def _scheduler_loop():
    every = dict(periodic_jobs())
    due = {func: time.monotonic() + seconds for func, seconds in every.items()}
    while True:
        now = time.monotonic()
        for func, at in due.items():
            if now >= at:
                due[func] = now + every[func]
                enqueue(func)
        time.sleep(max(0.05, min(due.values()) - time.monotonic()))

"""The job runner every background job goes through.

When Redis is configured and answers, jobs are enqueued on django-rq queues and run by
`python manage.py rqworker`; otherwise they run in-process, at once, in the caller's thread.
Callers don't care which: they pass an importable function and its arguments.
"""

import logging
import time

import django_rq
import redis
from django.conf import settings
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
    """Run `func(*args, **kwargs)` in the background; return the RQ job id, or None when it ran
    in-process. In-process failures are logged, never raised: the caller's request goes on."""
    if redis_available():
        job = get_queue(queue_name).enqueue(func, *args, job_timeout=job_timeout, **kwargs)
        return job.id
    try:
        func(*args, **kwargs)
    except Exception:
        logger.exception("In-process job %s failed", getattr(func, "__name__", func))
    return None


def job_state(job_id):
    """RQ status of a job as a string ('queued', 'started', 'finished', 'failed', ...), or
    None when Redis has no such job any more (it expired, was deleted, or Redis was flushed)."""
    if not job_id or not redis_available():
        return None
    try:
        job = Job.fetch(job_id, connection=get_queue().connection)
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=False)
    return getattr(status, "value", status)

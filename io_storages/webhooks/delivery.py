"""Delivering one webhook event: sign it, POST it through the SSRF checks, retry with backoff.

A delivery is a job (`deliver_job`, queued by `enqueue_delivery` through core.jobs on
WEBHOOK_QUEUE) that carries the webhook's id and the event, never the secret: the job reads
the row when it runs, so nothing secret sits in Redis, and a webhook deleted or switched off
meanwhile is not sent. Each attempt (`deliver`):

- checks the URL as every user-given address is checked (`ssrf.check_url`: one strict parse;
  public addresses only, unless it is a trusted endpoint), connects to the URL rebuilt from
  the parsed parts and checks the connected socket's peer before a byte is sent
  (`ssrf.EndpointGuard`); redirects are not followed and no environment proxy is used;
- sends `{"action", "delivery_id", "timestamp", ...event}` as compact JSON with
  `X-Signature-256: sha256=<hex HMAC-SHA256 of the body bytes, keyed by the secret>` (when the
  webhook has a secret), `X-Webhook-Event`, `X-Webhook-Delivery` (the same for every attempt
  of one event), `X-Webhook-Timestamp` (also in the signed body: receivers can refuse old
  bodies) and `X-Webhook-Attempt`; the answer's body is never read.

A connection error, a timeout, a 408, 429 or 5xx is tried again, WEBHOOK_MAX_ATTEMPTS times
in all, WEBHOOK_RETRY_BACKOFF seconds after the first try, then twice as long each time: on
RQ through RQ's `Retry` (the worker runs with `--with-scheduler`), in-process on a timer
thread, so no sync ever waits for a retry. A refused address, another 4xx or a 3xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import requests
from django.conf import settings
from django.db import connections
from requests.adapters import HTTPAdapter
from rq import Retry, get_current_job

from core import jobs
from io_storages import ssrf
from io_storages.webhooks.models import Webhook

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature-256"
EVENT_HEADER = "X-Webhook-Event"
DELIVERY_HEADER = "X-Webhook-Delivery"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
ATTEMPT_HEADER = "X-Webhook-Attempt"
#: headers the service sets itself or that shape the request: a webhook's `headers` cannot name them
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        SIGNATURE_HEADER,
        EVENT_HEADER,
        DELIVERY_HEADER,
        TIMESTAMP_HEADER,
        ATTEMPT_HEADER,
        "Content-Type",
        "Content-Length",
        "Content-Encoding",
        "Transfer-Encoding",
        "Host",
        "Connection",
        "Keep-Alive",
        "Upgrade",
        "TE",
        "Trailer",
        "Expect",
        "Proxy-Authorization",
        "Proxy-Connection",
    )
)
#: answers worth another try: the receiver is down, overloaded or timed out
RETRY_STATUSES = frozenset({408, 425, 429})


class DeliveryFailed(Exception):
    """Raised in an RQ job so that RQ's `Retry` runs the next attempt (and the job ends in
    the failed registry after the last one)."""


@dataclass
class Outcome:
    """How one attempt went; `detail` is safe to show the webhook's owner."""

    ok: bool
    status_code: Optional[int]
    detail: str
    retryable: bool = False

    def as_dict(self):
        result = asdict(self)
        del result["retryable"]
        return result


def sign(secret: str, body: bytes) -> str:
    """The X-Signature-256 value of `body`: `sha256=` and the hex HMAC-SHA256 keyed by `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_body(action: str, event: dict, delivery_id: str, timestamp: int) -> bytes:
    """The exact bytes that are sent and signed."""
    body = {"action": action, "delivery_id": delivery_id, "timestamp": timestamp, **event}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# --- the HTTP request -------------------------------------------------------------------
class _PeerCheckedAdapter(HTTPAdapter):
    """requests' adapter whose connections run `check_peer`; no retries of its own."""

    def __init__(self, check_peer: Callable[[str, str], None]):
        self._check_peer = check_peer
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = ssrf.peer_checked_pools(
            self.poolmanager.pool_classes_by_scheme, self._check_peer
        )


def _session(endpoint: ssrf.Endpoint) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no HTTP(S)_PROXY: the connected peer is the receiver, and is checked
    adapter = _PeerCheckedAdapter(ssrf.EndpointGuard(endpoint).check_peer)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _headers(webhook: Webhook, action: str, delivery_id: str, timestamp: int, attempt: int, body: bytes) -> dict:
    given = webhook.headers if isinstance(webhook.headers, dict) else {}
    headers = {str(name): str(value) for name, value in given.items()}
    headers = {name: value for name, value in headers.items() if name.lower() not in RESERVED_HEADERS}
    headers.setdefault("User-Agent", f"io-storages-webhooks/{settings.VERSION}")
    headers.update(
        {
            "Content-Type": "application/json",
            EVENT_HEADER: action,
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: str(timestamp),
            ATTEMPT_HEADER: str(attempt),
        }
    )
    if webhook.secret:
        headers[SIGNATURE_HEADER] = sign(webhook.secret, body)
    return headers


def deliver(webhook: Webhook, action: str, event: dict, delivery_id: str, attempt: int = 1) -> Outcome:
    """One attempt to POST the event to the webhook's URL, in this thread."""
    try:
        endpoint = ssrf.check_url(webhook.url, what="url")
    except ssrf.SSRFError as e:
        return Outcome(False, None, f"Not sent: {e}")
    timestamp = int(time.time())
    body = request_body(action, event, delivery_id, timestamp)
    headers = _headers(webhook, action, delivery_id, timestamp, attempt, body)
    where = f"{endpoint.host}:{endpoint.port}"
    timeout = settings.WEBHOOK_TIMEOUT
    try:
        with _session(endpoint) as session:
            response = session.post(
                endpoint.url, data=body, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
            )
            response.close()  # the status is all we use: a long (or endless) body is not read
    except ssrf.SSRFError as e:  # the connected peer was refused: nothing was sent
        return Outcome(False, None, f"Not sent: {e}")
    except requests.Timeout:
        return Outcome(False, None, f"No answer from {where} within {timeout:g} s", retryable=True)
    except requests.RequestException as e:
        return Outcome(False, None, f"Could not reach {where} ({type(e).__name__})", retryable=True)
    except (ValueError, UnicodeError) as e:  # e.g. a header value saved past the API's checks
        return Outcome(False, None, f"Not sent: the request could not be built ({type(e).__name__})")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, status, f"{where} answered {status}")
    retryable = status >= 500 or status in RETRY_STATUSES
    detail = f"{where} answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return Outcome(False, status, detail, retryable=retryable)


# --- the job and its retries ------------------------------------------------------------
def backoff(attempt: int) -> float:
    """Seconds between attempt `attempt` and the next one."""
    return settings.WEBHOOK_RETRY_BACKOFF * 2 ** (attempt - 1)


def enqueue_delivery(webhook_id: int, action: str, event: dict) -> Optional[str]:
    """Queue the delivery of one event to one webhook; the RQ job id, or None when it ran
    in-process. Never raises: a webhook must not break what emitted the event."""
    delivery_id = str(uuid.uuid4())
    try:
        options = {"queue_name": settings.WEBHOOK_QUEUE, "job_timeout": int(10 * settings.WEBHOOK_TIMEOUT) + 30}
        if jobs.redis_available() and settings.RQ_ASYNC:  # a worker runs it: RQ schedules the retries
            options["rq_retries"] = True
            if settings.WEBHOOK_MAX_ATTEMPTS > 1:
                intervals = [round(backoff(n)) for n in range(1, settings.WEBHOOK_MAX_ATTEMPTS)]  # RQ: whole seconds
                options["retry"] = Retry(max=settings.WEBHOOK_MAX_ATTEMPTS - 1, interval=intervals)
        return jobs.enqueue(deliver_job, webhook_id, action, event, delivery_id, **options)
    except Exception:
        logger.exception("Webhook #%s: delivery %s of %s not queued", webhook_id, delivery_id, action)
        return None


def deliver_job(webhook_id, action, event, delivery_id, attempt=1, rq_retries=False):
    """The delivery job: one attempt, then the next one scheduled if it may succeed later.
    With `rq_retries` (queued with RQ's `Retry`) a failed attempt raises `DeliveryFailed` and
    RQ runs the next; otherwise the next attempt runs on a timer thread."""
    webhook = Webhook.objects.filter(pk=webhook_id).first()
    if webhook is None or not webhook.is_active:
        logger.info("Webhook #%s deleted or inactive: delivery %s of %s dropped", webhook_id, delivery_id, action)
        return None
    job = get_current_job() if rq_retries else None
    if job is not None:  # RQ runs the same job again: count its attempts in its meta
        attempt = job.meta.get("webhook_attempt", 0) + 1
        job.meta["webhook_attempt"] = attempt
        job.save_meta()
    outcome = deliver(webhook, action, event, delivery_id, attempt)
    if outcome.ok:
        logger.info(
            "Webhook #%s: %s delivery %s, attempt %s: %s", webhook_id, action, delivery_id, attempt, outcome.detail
        )
        return outcome.as_dict()
    final = not outcome.retryable or attempt >= settings.WEBHOOK_MAX_ATTEMPTS
    logger.warning(
        "Webhook #%s: %s delivery %s, attempt %s of %s failed: %s%s",
        webhook_id,
        action,
        delivery_id,
        attempt,
        settings.WEBHOOK_MAX_ATTEMPTS,
        outcome.detail,
        "; giving up" if final else f"; next attempt in {backoff(attempt):g} s",
    )
    if job is not None and outcome.retryable:
        raise DeliveryFailed(outcome.detail)  # RQ retries it (none left: the job is failed)
    if not final:
        _retry_later(backoff(attempt), webhook_id, action, event, delivery_id, attempt + 1)
    return outcome.as_dict()


def _retry_later(delay, *args):
    """In-process: run the next attempt on a timer thread (a daemon: a process that exits
    drops its pending retries, as it drops its other in-process jobs)."""
    timer = threading.Timer(delay, _retry_in_thread, args)
    timer.daemon = True
    timer.start()


def _retry_in_thread(*args):
    try:
        deliver_job(*args)
    except Exception:
        logger.exception("Webhook #%s: retry of delivery %s failed", args[0], args[3])
    finally:
        connections.close_all()  # this thread's own database connections

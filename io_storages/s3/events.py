"""S3 object notifications read from an SQS queue: the S3 adapter of io_storages.events.

The bucket sends its `s3:ObjectCreated:*` (and `s3:ObjectRemoved:*`) notifications to an SQS
queue (directly, or through an SNS topic); the storage's `event_queue` is that queue's URL.
The queue is read with the storage's own keys, by long polling, and its URL is parsed once,
strictly: `https://sqs.<region>.amazonaws.com/<account id>/<queue name>` (and AWS's other SQS
host names), or a queue on the host of the storage's `s3_endpoint` (moto, LocalStack,
ElasticMQ next to MinIO...). It is checked against SSRF when saved, when the client is made,
before every request and on every connected socket, as `s3_endpoint` is.

Message bodies: S3's `{"Records": [...]}` (keys URL-encoded, `+` for spaces), the same inside
an SNS notification's `Message`, and `s3:TestEvent` (sent when the configuration is saved:
ignored). Anything else is malformed: acknowledged and logged, never retried.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote_plus

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from io_storages import ssrf
from io_storages.client import AccessDenied, InvalidCredentials, StorageError
from io_storages.events import CREATED, REMOVED, EventQueueError, EventSource, Message, ObjectEvent
from io_storages.s3.client import _SESSION, _SESSION_LOCK, _check_connected_peers

#: longest long poll SQS allows
MAX_WAIT_SECONDS = 20
_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=10,
    read_timeout=MAX_WAIT_SECONDS + 20,  # a long poll holds the response up to 20 s
    max_pool_connections=2,
)

# AWS's SQS hosts: sqs.<region>.amazonaws.com(.cn), sqs-fips.<region>.amazonaws.com,
# sqs.<region>.api.aws (dual-stack), <region>.queue.amazonaws.com and queue.amazonaws.com
# (legacy, us-east-1).
_AWS_SQS_HOST = re.compile(
    r"sqs(?:-fips)?\.(?P<r1>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"|sqs\.(?P<r2>[a-z0-9-]+)\.api\.aws"
    r"|(?:(?P<r3>[a-z0-9-]+)\.)?queue\.amazonaws\.com(?:\.cn)?"
)
_QUEUE_PATH = re.compile(r"/(?P<account>[A-Za-z0-9_-]{1,64})/(?P<name>[A-Za-z0-9_-]{1,80}(?:\.fifo)?)")
_AWS_ACCOUNT = re.compile(r"[0-9]{12}")
_FORM = "an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/my-queue"


@dataclass(frozen=True)
class QueueAddress:
    endpoint: ssrf.Endpoint  # what is checked and connected to (scheme, host, port)
    url: str  # the queue URL rebuilt from the parsed parts: the only one sent
    name: str
    region: str
    aws: bool  # one of AWS's SQS hosts


def parse_event_queue(storage) -> QueueAddress:
    """The storage's `event_queue` parsed strictly, or `EventQueueError` saying what is wrong
    (never quoting the text: it might hold anything)."""
    try:
        parsed = ssrf.parse_url(storage.event_queue, what="event_queue")
    except ssrf.SSRFError as e:
        raise EventQueueError(f"{e}; it must be {_FORM}") from None
    path = _QUEUE_PATH.fullmatch(parsed.path)
    if not path:
        raise EventQueueError(f"event_queue must be {_FORM} (a path /<account id>/<queue name>)")
    endpoint = ssrf.Endpoint(parsed.scheme, parsed.host, parsed.port)
    aws = _AWS_SQS_HOST.fullmatch(parsed.host)
    if aws:
        if parsed.scheme != "https" or parsed.port != 443:
            raise EventQueueError("event_queue on an AWS SQS host must be https:// without a port")
        if not _AWS_ACCOUNT.fullmatch(path["account"]):
            raise EventQueueError("event_queue: an AWS account id has 12 digits")
        region = aws["r1"] or aws["r2"] or aws["r3"] or "us-east-1"
    else:
        s3_host = None
        if storage.s3_endpoint:
            try:
                s3_host = ssrf.parse_url(storage.s3_endpoint, what="s3_endpoint").host
            except ssrf.SSRFError as e:
                raise EventQueueError(str(e)) from None
        if parsed.host != s3_host:
            where = f"on the host of s3_endpoint ({s3_host}) or " if s3_host else ""
            raise EventQueueError(
                f"event_queue must be an SQS queue {where}on an AWS SQS host (sqs.<region>.amazonaws.com), "
                f"not on {parsed.host}"
            )
        region = storage.region_name or "us-east-1"
    return QueueAddress(endpoint, f"{endpoint.url}{parsed.path}", path["name"], region, bool(aws))


def _checked(storage) -> QueueAddress:
    """Parsed, SSRF-checked, and the credential rule of `client_for` applied."""
    queue = parse_event_queue(storage)
    ssrf.check_url(queue.endpoint.url, what="event_queue")
    if not storage.aws_access_key_id and not storage.aws_secret_access_key:
        ssrf.require_credentials("aws_access_key_id and aws_secret_access_key are")
        if not queue.aws and not ssrf.is_trusted(queue.endpoint):
            raise InvalidCredentials(
                "aws_access_key_id and aws_secret_access_key are required with this event_queue: "
                "the server's own credentials are only used with AWS or the endpoints the operator configured"
            )
    return queue


# --- the adapter's functions (io_storages.events) ---------------------------------------------


def source_key(storage):
    """Who reads from where: the queue, the host rule's endpoint and the credentials."""
    return (
        storage.event_queue,
        storage.s3_endpoint or "",
        storage.region_name or "",
        storage.aws_access_key_id or "",
        storage.aws_secret_access_key or "",
        storage.aws_session_token or "",
    )


def check_event_queue(storage, connect=True):
    queue = _checked(storage)
    if connect:
        source = SQSEventSource(queue, storage)
        try:
            source.check()
        finally:
            source.close()


def source_for(storage) -> "SQSEventSource":
    return SQSEventSource(_checked(storage), storage)


# --- message bodies ---------------------------------------------------------------------------


def _kind(event_name: str) -> Optional[str]:
    name = event_name[3:] if event_name.startswith("s3:") else event_name  # MinIO writes "s3:..."
    if name.startswith("ObjectCreated:"):
        return CREATED
    if name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        return REMOVED
    return None  # restores, replication, tagging, ACLs...: nothing to import


def parse_body(body) -> tuple[list[ObjectEvent], Optional[str]]:
    """(events, problem) of one message body; problem is None for a good message (also for
    a test event, which has no events)."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return [], "the body is not JSON"
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        try:  # through SNS: the S3 notification is the Message
            doc = json.loads(doc["Message"])
        except ValueError:
            return [], "the SNS notification's Message is not JSON"
    if not isinstance(doc, dict):
        return [], "the body is not a JSON object"
    if doc.get("Event") == "s3:TestEvent":
        return [], None
    records = doc.get("Records")
    if not isinstance(records, list):
        return [], "not an S3 event notification (no Records)"
    events, problems = [], []
    for i, record in enumerate(records):
        try:
            name, s3 = record["eventName"], record["s3"]
            bucket, key = s3["bucket"]["name"], s3["object"]["key"]
            if not all(isinstance(v, str) for v in (name, bucket, key)):
                raise TypeError
            key = unquote_plus(key, errors="strict")
        except (KeyError, TypeError):
            problems.append(f"record {i} has no eventName, s3.bucket.name or s3.object.key")
            continue
        except UnicodeDecodeError:
            problems.append(f"record {i}: its key is not URL-encoded UTF-8")
            continue
        kind = _kind(name)
        if kind is not None and key:
            events.append(ObjectEvent(kind, bucket, key))
    return events, "; ".join(problems) or None


# --- the queue --------------------------------------------------------------------------------


class SQSEventSource(EventSource):
    """One SQS queue read with one storage's keys."""

    def __init__(self, queue: QueueAddress, storage):
        self.queue = queue
        with _SESSION_LOCK, self._errors():
            self._sqs = _SESSION.client(
                "sqs",
                aws_access_key_id=storage.aws_access_key_id or None,
                aws_secret_access_key=storage.aws_secret_access_key or None,
                aws_session_token=storage.aws_session_token or None,
                region_name=queue.region,
                endpoint_url=queue.endpoint.url,
                config=_CONFIG,
            )
        guard = ssrf.EndpointGuard(queue.endpoint)

        def before_send(request, **kwargs):
            guard.before_connect(request.url)

        self._sqs.meta.events.register("before-send.sqs.*", before_send)
        _check_connected_peers(self._sqs, guard.check_peer)

    @contextmanager
    def _errors(self):
        what = f"SQS queue '{self.queue.name}'"
        try:
            yield
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
                raise EventQueueError(f"{what} does not exist") from None
            if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken"):
                raise InvalidCredentials(
                    f"Cannot read {what}: check aws_access_key_id / aws_secret_access_key"
                ) from None
            if code in ("AccessDenied", "AccessDeniedException") or status == 403:
                raise AccessDenied(
                    f"Access denied to {what}: the keys need sqs:ReceiveMessage, sqs:DeleteMessage "
                    "and sqs:GetQueueAttributes"
                ) from None
            raise StorageError(f"SQS error on {what}: {code or status}") from None
        except (BotoConnectionError, HTTPClientError) as e:
            if isinstance(e.kwargs.get("error"), StorageError):  # raised by check_peer
                raise e.kwargs["error"] from None
            raise StorageError(f"Cannot reach {what} at {self.queue.endpoint.url} ({type(e).__name__})") from None
        except BotoCoreError as e:
            raise StorageError(f"SQS client error on {what}: {type(e).__name__}") from None

    def check(self):
        with self._errors():
            self._sqs.get_queue_attributes(QueueUrl=self.queue.url, AttributeNames=["QueueArn"])

    def receive(self, wait_seconds):
        with self._errors():
            answer = self._sqs.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=max(0, min(MAX_WAIT_SECONDS, int(round(wait_seconds)))),
            )
        messages = []
        for item in answer.get("Messages", []):
            events, problem = parse_body(item.get("Body"))
            messages.append(Message(item["ReceiptHandle"], events, problem, item.get("MessageId", "")))
        return messages

    def ack(self, messages):
        for start in range(0, len(messages), 10):  # DeleteMessageBatch takes 10 at most
            entries = [{"Id": str(i), "ReceiptHandle": m.handle} for i, m in enumerate(messages[start : start + 10])]
            with self._errors():
                answer = self._sqs.delete_message_batch(QueueUrl=self.queue.url, Entries=entries)
            if answer.get("Failed"):
                # Delivered again later: their keys are linked by then, so they create nothing.
                raise StorageError(f"SQS queue '{self.queue.name}' did not delete {len(answer['Failed'])} messages")

    def close(self):
        self._sqs.close()

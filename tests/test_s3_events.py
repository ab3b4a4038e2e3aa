"""Event-driven import (S3 notifications through SQS) against a real moto server that records
every request it serves: notified objects become tasks without any listing, by the rules of
a sync, and duplicates and replays create nothing."""

import json
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from io_storages import ssrf
from io_storages.events import Consumer
from io_storages.events import consume_once as drain
from io_storages.jobs import start_sync
from io_storages.s3.events import parse_body
from io_storages.s3.models import S3ImportStorage
from io_storages.sync import ImportSync
from tests.api_errors import validation_errors
from tests.fixtures.s3 import new_bucket, new_queue, notify_queue, queued_messages, s3_admin, s3_config, sqs_admin
from tests.storage_helpers import create_storage, put, sync, task_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]


@pytest.fixture
def moto(s3_recording_server):
    return s3_recording_server


@pytest.fixture
def notified(moto):
    """(bucket, queue URL): a bucket with one object (`seed.jpg`, so that a storage can connect)
    and a queue; notifications are turned on by `connect`, after the storage exists."""
    bucket = new_bucket(moto.url)
    put(moto.url, bucket, "seed.jpg", b"x")
    return bucket, new_queue(moto.url)


def connect(alice, project, moto, notified, **fields):
    """An S3 storage reading `notified`'s queue, created through the API; then the bucket's
    notifications are turned on and the server's request log is reset."""
    bucket, queue = notified
    storage = create_storage(alice, project, s3_config(moto.url, bucket, event_queue=queue, **fields))
    notify_queue(moto.url, bucket, queue)
    moto.reset()
    return storage


def consume_once():
    """Drain the queues once; moto has every message at once, so no long poll is needed."""
    return drain(wait_seconds=0)


def uris(bucket, *keys):
    return [{"image": f"s3://{bucket}/{key}"} for key in keys]


def storage_meta(alice, storage):
    response = alice.get(f"/api/storages/s3/{storage['id']}")
    assert response.status_code == 200, response.content
    return response.json()


# --- the contract -----------------------------------------------------------------------------
def test_notified_objects_become_tasks_without_a_listing(alice, project, moto, notified):
    bucket, queue = notified
    connect(alice, project, moto, notified, use_blob_urls=True)
    keys = ["a.jpg", "with space+plus é.jpg", "b.jpg"]
    for key in keys:
        put(moto.url, bucket, key, b"x")

    assert consume_once() == 4  # the S3 test event and three notifications
    assert task_data(project) == sorted(uris(bucket, *keys), key=json.dumps)  # seed.jpg was never notified
    assert moto.listings(bucket) == []
    assert "ReceiveMessage" in moto.sqs_actions() and "DeleteMessageBatch" in moto.sqs_actions()
    assert queued_messages(moto.url, queue) == 0


def test_the_request_log_sees_listings(alice, project, moto, notified):
    """The observation of the test above is real: a sync's listing is in the log."""
    bucket, _ = notified
    storage = connect(alice, project, moto, notified, use_blob_urls=True)
    start_sync(S3ImportStorage.objects.get(pk=storage["id"]))
    assert moto.listings(bucket)
    assert task_data(project) == uris(bucket, "seed.jpg")


def test_duplicates_and_replays_create_nothing(alice, project, moto, notified):
    bucket, queue = notified
    storage = connect(alice, project, moto, notified, use_blob_urls=True)
    put(moto.url, bucket, "a.jpg", b"x")
    sqs = sqs_admin(moto.url)
    body = json.dumps(
        {
            "Records": [
                {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": "a.jpg"}}}
            ]
        }
    )
    consume_once()
    assert project.tasks.count() == 1

    put(moto.url, bucket, "a.jpg", b"y")  # overwritten: notified again
    sqs.send_message(QueueUrl=queue, MessageBody=body)  # a replayed message
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    consume_once()
    assert task_data(project) == uris(bucket, "a.jpg")
    events = storage_meta(alice, storage)["meta"]["events"]
    # one batch held the three notifications of the key: one lookup, counted once
    assert events["imported"] == 1 and events["existed"] >= 1 and events["failed"] == 0
    assert queued_messages(moto.url, queue) == 0


def test_keys_synced_before_create_nothing(alice, project, moto, notified):
    bucket, _ = notified
    storage = connect(alice, project, moto, notified, use_blob_urls=True)
    put(moto.url, bucket, "a.jpg", b"x")
    start_sync(S3ImportStorage.objects.get(pk=storage["id"]))  # imports seed.jpg and a.jpg
    consume_once()
    assert task_data(project) == uris(bucket, "a.jpg", "seed.jpg")


def test_prefix_recursive_scan_and_regex_filter_apply_as_in_a_listing(alice, project, moto, notified):
    bucket, _ = notified
    put(moto.url, bucket, "images/seed.jpg", b"x")
    connect(alice, project, moto, notified, use_blob_urls=True, prefix="images", regex_filter=r".*\.jpg$")
    for key in ["images/a.jpg", "images/b.png", "images/sub/c.jpg", "other/d.jpg", "images/folder/", "e.jpg"]:
        put(moto.url, bucket, key, b"x")
    consume_once()
    assert task_data(project) == uris(bucket, "images/a.jpg")


def test_recursive_scan_imports_nested_keys(alice, project, moto, notified):
    bucket, _ = notified
    put(moto.url, bucket, "images/seed.jpg", b"x")
    connect(alice, project, moto, notified, use_blob_urls=True, prefix="images/", recursive_scan=True)
    put(moto.url, bucket, "images/sub/c.jpg", b"x")
    consume_once()
    assert task_data(project) == uris(bucket, "images/sub/c.jpg")


def test_task_files_are_read_as_in_a_sync(alice, project, moto, notified):
    bucket, _ = notified
    connect(alice, project, moto, notified)
    put(moto.url, bucket, "tasks.json", [{"image": "one"}, {"image": "two"}])
    consume_once()
    assert task_data(project) == [{"image": "one"}, {"image": "two"}]
    assert sorted(project.tasks.values_list("s3importstoragelink__row_index", flat=True)) == [0, 1]


@pytest.mark.parametrize("use_blob_urls", [True, False])
def test_an_object_deleted_before_its_event_is_read_is_an_error_recorded(alice, project, moto, notified, use_blob_urls):
    bucket, queue = notified
    storage = connect(alice, project, moto, notified, use_blob_urls=use_blob_urls)
    put(moto.url, bucket, "gone.json", {"image": "x"})
    s3_admin(moto.url).delete_object(Bucket=bucket, Key="gone.json")
    put(moto.url, bucket, "kept.json", {"image": "kept"})
    consume_once()
    kept = uris(bucket, "kept.json") if use_blob_urls else [{"image": "kept"}]
    assert task_data(project) == kept
    body = storage_meta(alice, storage)
    events = body["meta"]["events"]
    assert events["failed"] == 1 and events["removed"] == 1 and events["imported"] == 1
    assert f"s3://{bucket}/gone.json" in events["errors"][0] and "nothing imported" in events["errors"][0]
    assert body["status"] == "initialized"  # the sync status machine is untouched
    assert queued_messages(moto.url, queue) == 0  # acknowledged: not retried forever


def test_test_events_and_malformed_messages_are_acknowledged(alice, project, moto, notified):
    bucket, queue = notified
    connect(alice, project, moto, notified, use_blob_urls=True)
    sqs = sqs_admin(moto.url)
    for body in ["not json", "[]", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), '{"a": 1}']:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert consume_once() == 5  # with the S3 test event
    assert project.tasks.count() == 0
    assert queued_messages(moto.url, queue) == 0


def test_events_of_other_buckets_are_ignored(alice, project, moto, notified):
    bucket, queue = notified
    connect(alice, project, moto, notified, use_blob_urls=True)
    other = new_bucket(moto.url)
    notify_queue(moto.url, other, queue)  # one queue, two buckets: only the storage's imports
    put(moto.url, other, "a.jpg", b"x")
    put(moto.url, bucket, "b.jpg", b"x")
    consume_once()
    assert task_data(project) == uris(bucket, "b.jpg")


def test_storages_sharing_a_queue_each_import_their_keys(alice, project, moto, notified):
    from tests.conftest import create_project

    bucket, _ = notified
    put(moto.url, bucket, "images/seed.jpg", b"x")
    put(moto.url, bucket, "docs/seed.json", b"{}")
    connect(alice, project, moto, notified, use_blob_urls=True, prefix="images")
    second = create_project(alice, "Docs")
    create_storage(alice, second, s3_config(moto.url, bucket, event_queue=notified[1], prefix="docs"))
    put(moto.url, bucket, "images/a.jpg", b"x")
    put(moto.url, bucket, "docs/t.json", {"text": "hello"})
    consume_once()
    assert task_data(project) == uris(bucket, "images/a.jpg")
    assert task_data(second) == [{"text": "hello"}]


def test_a_storage_that_cannot_import_does_not_hold_back_the_others(alice, project, moto, notified):
    from tests.conftest import create_project

    bucket, queue = notified
    broken = connect(alice, project, moto, notified, use_blob_urls=True)
    S3ImportStorage.objects.filter(pk=broken["id"]).update(regex_filter=r"(a)\1")  # stored before RE2
    second = create_project(alice, "Second")
    create_storage(alice, second, s3_config(moto.url, bucket, event_queue=queue, use_blob_urls=True))
    put(moto.url, bucket, "a.jpg", b"x")
    consume_once()
    assert project.tasks.count() == 0 and task_data(second) == uris(bucket, "a.jpg")
    events = storage_meta(alice, broken)["meta"]["events"]
    assert (
        events["failed"] == 1 and "regex_filter" in events["errors"][0] and "a sync imports them" in events["errors"][0]
    )
    assert queued_messages(moto.url, queue) == 0


def test_counts_are_visible_through_the_api(alice, project, moto, notified):
    bucket, _ = notified
    storage = connect(alice, project, moto, notified, use_blob_urls=True)
    put(moto.url, bucket, "a.jpg", b"x")
    put(moto.url, bucket, "b.txt", b"x")
    consume_once()
    body = storage_meta(alice, storage)
    events = body["meta"]["events"]
    assert {k: events[k] for k in ("imported", "existed", "ignored", "removed", "failed")} == {
        "imported": 2,
        "existed": 0,
        "ignored": 0,
        "removed": 0,
        "failed": 0,
    }
    assert events["time_last_event"] and events["since"]
    assert body["status"] == "initialized" and body["last_sync"] is None

    # A sync has its own counts: the events' add up across it.
    assert sync(alice, storage)["status"] == "completed"
    put(moto.url, bucket, "c.jpg", b"x")
    consume_once()
    after = storage_meta(alice, storage)["meta"]["events"]
    assert after["imported"] == 3 and after["since"] == events["since"]


def test_a_sync_and_an_event_importing_one_key_at_once_create_one_task(alice, project, moto, notified):
    """The batch is re-checked under the storage's lock: a key linked by another importer after
    this one looked it up is not created twice."""
    bucket, _ = notified
    storage = S3ImportStorage.objects.get(pk=connect(alice, project, moto, notified, use_blob_urls=True)["id"])
    put(moto.url, bucket, "a.jpg", b"x")

    class Quiet:
        count, meta = 0, {}

        def tick(self):
            pass

        def save(self):
            pass

    first = ImportSync(storage, Quiet())
    first._collect("a.jpg")  # looked up, not linked, pending
    second = ImportSync(storage, Quiet())
    second.import_keys(["a.jpg"])  # the other importer commits first
    first._flush()
    assert project.tasks.count() == 1 and first.created == 0 and first.existed == 1


@pytest.mark.django_db(transaction=True)  # its threads read what the test wrote
def test_the_consumer_runs_until_stopped(alice, project, moto, notified):
    bucket, _ = notified
    connect(alice, project, moto, notified, use_blob_urls=True)
    consumer = Consumer(wait_seconds=1, rescan_seconds=0.5)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        put(moto.url, bucket, "a.jpg", b"x")
        deadline = time.monotonic() + 30
        while project.tasks.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        consumer.stop()
        thread.join(10)
    assert task_data(project) == uris(bucket, "a.jpg")
    assert not thread.is_alive()


def test_the_command_names_storages_it_cannot_read(alice, project, moto, notified):
    storage = connect(alice, project, moto, notified, use_blob_urls=True)
    with pytest.raises(CommandError, match="s3:999999"):
        call_command("consume_events", "--once", "--storage", "s3:999999")
    call_command("consume_events", "--once", "--storage", f"s3:{storage['id']}")


# --- the queue address: validated at save and at connect -----------------------------------------
def test_event_queue_must_be_an_sqs_queue_url_on_the_endpoint_host_or_aws(alice, project, moto, notified):
    bucket, queue = notified
    port = moto.url.rsplit(":", 1)[1]
    for bad in [
        "not a url",
        f"http://user:pw@127.0.0.1:{port}/123456789012/q",
        f"{queue}?x=1",
        f"http://127.0.0.1:{port}/just-one-segment",
        f"http://localhost:{port}/123456789012/q",  # another host than s3_endpoint's
        "http://sqs.us-east-1.amazonaws.com/123456789012/q",  # AWS: https only
        "https://sqs.us-east-1.amazonaws.com/1234/q",  # AWS account ids have 12 digits
    ]:
        response = alice.post(
            "/api/storages/s3/", {"project": project.id, **s3_config(moto.url, bucket, event_queue=bad)}, format="json"
        )
        errors = validation_errors(response)
        assert list(errors) == ["event_queue"], (bad, errors)


def test_a_queue_that_does_not_exist_is_refused_on_save(alice, project, moto, notified):
    bucket, queue = notified
    response = alice.post(
        "/api/storages/s3/",
        {"project": project.id, **s3_config(moto.url, bucket, event_queue=queue + "-missing")},
        format="json",
    )
    assert "does not exist" in validation_errors(response)["event_queue"][0]


def test_event_queue_on_private_addresses_is_refused_on_save_and_at_connect(
    alice, project, moto, notified, settings, ssrf_on
):
    bucket, queue = notified
    settings.SSRF_PROTECTION_ENABLED = False
    storage = connect(alice, project, moto, notified, use_blob_urls=True)  # saved while allowed
    settings.SSRF_PROTECTION_ENABLED = True
    ssrf.clear_guard_cache()
    secrets = {"aws_access_key_id": "test-access-key", "aws_secret_access_key": "test-secret-key"}
    response = alice.patch(f"/api/storages/s3/{storage['id']}", {"event_queue": queue + "x", **secrets}, format="json")
    errors = validation_errors(response)
    assert list(errors) == ["event_queue"] and "SSRF" in errors["event_queue"][0], errors
    put(moto.url, bucket, "a.jpg", b"x")
    moto.reset()
    consume_once()
    assert moto.sqs_actions() == []  # nothing was sent to the queue
    assert project.tasks.count() == 0
    assert "SSRF" in storage_meta(alice, storage)["meta"]["events"]["queue_error"]  # said where users look


def test_changing_event_queue_needs_the_secrets_again(alice, project, moto, notified):
    storage = connect(alice, project, moto, notified, use_blob_urls=True)
    other = new_queue(moto.url)
    response = alice.patch(f"/api/storages/s3/{storage['id']}", {"event_queue": other}, format="json")
    errors = validation_errors(response)
    assert {"aws_access_key_id", "aws_secret_access_key"} <= set(errors) and "event_queue" in errors[
        "aws_secret_access_key"
    ][0]
    response = alice.patch(
        f"/api/storages/s3/{storage['id']}",
        {"event_queue": other, "aws_access_key_id": "test-access-key", "aws_secret_access_key": "test-secret-key"},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_types_without_an_adapter_refuse_an_event_queue(alice, project):
    response = alice.post(
        "/api/storages/gcs/validate",
        {"bucket": "b", "event_queue": "https://pubsub.googleapis.com/v1/projects/p/subscriptions/s"},
        format="json",
    )
    message = validation_errors(response)["event_queue"][0]
    assert "cannot read object notifications" in message and "s3" in message


# --- message bodies -------------------------------------------------------------------------------
def test_message_bodies_direct_through_sns_and_test_events():
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b%2Bc.jpg"}}}
    direct = json.dumps({"Records": [record]})
    events, problem = parse_body(direct)
    assert problem is None and [(e.kind, e.bucket, e.key) for e in events] == [("created", "b", "a b+c.jpg")]
    assert parse_body(json.dumps({"Type": "Notification", "Message": direct}))[0] == events
    assert parse_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == ([], None)
    removed = {**record, "eventName": "ObjectRemoved:Delete"}
    assert parse_body(json.dumps({"Records": [removed]}))[0][0].kind == "removed"
    assert parse_body(json.dumps({"Records": [{**record, "eventName": "ObjectRestore:Post"}]})) == ([], None)
    for bad in ["{", "[]", '{"Records": 1}', json.dumps({"Records": [{"s3": {}}]})]:
        events, problem = parse_body(bad)
        assert events == [] and problem, bad

"""Webhooks (issue 14 point 5): the API (Label Studio's /api/webhooks/ shape, organization
isolation, write-only secret, 400s), and deliveries of sync events to real HTTP receivers on
loopback: signed bodies, retries after a 500 (in-process and through a real RQ worker), and
SSRF: a refused target never receives a request.

The receivers listen on 127.0.0.1, which the SSRF policy refuses: tests that need one to be
reached trust it (and moto) with SSRF_TRUSTED_ENDPOINTS, with protection on, so deliveries
still go through the trusted-endpoint checks (including the connected peer's).
"""

import hashlib
import hmac
import json
import socket

import pytest
from django.db import connection

from core import jobs
from io_storages.webhooks.delivery import enqueue_delivery
from io_storages.webhooks.models import STORAGE_SYNC_COMPLETED, STORAGE_SYNC_FAILED, STORAGE_SYNC_STARTED, Webhook
from tests.api_errors import error_detail, validation_errors
from tests.fixtures.job_redis import needs_redis
from tests.fixtures.s3 import s3_config
from tests.fixtures.servers import free_port
from tests.storage_helpers import create_storage, put, sync

pytestmark = pytest.mark.django_db

SECRET = "whsec-5d1f0c9e-test"


@pytest.fixture(autouse=True)
def one_attempt(settings):
    """One attempt per delivery unless a test asks for retries: no retry thread outlives a test."""
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_RETRY_BACKOFF = 0


@pytest.fixture
def trust(ssrf_on, monkeypatch):
    """trust(*urls): SSRF protection on, with these endpoints trusted too (e.g. a receiver)."""
    trusted = []

    def install(*urls):
        trusted.extend(urls)
        monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", ",".join(trusted))

    return install


@pytest.fixture
def s3_storage(alice, project, s3_server, s3_bucket, trust):
    """An import storage of alice's project on moto (trusted), with two objects to import."""
    trust(s3_server)
    put(s3_server, s3_bucket, "a.jpg", b"a")
    put(s3_server, s3_bucket, "b.jpg", b"b")
    return create_storage(alice, project, {**s3_config(s3_server, s3_bucket), "use_blob_urls": True})


def create_webhook(client, project, url, **fields):
    response = client.post("/api/webhooks/", {"project": project.id, "url": url, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def verifies(secret, request):
    """What a receiver does (README, "Webhooks"): HMAC-SHA256 of the body bytes as received."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["X-Signature-256"])


# --- the API ----------------------------------------------------------------------------
def test_a_webhook_is_created_listed_read_updated_and_deleted(alice, project, trust):
    trust("https://hooks.example.com")
    created = create_webhook(alice, project, "https://hooks.example.com/sync", secret=SECRET, headers={"X-Team": "a"})
    assert set(created) == {
        "id",
        "organization",
        "project",
        "url",
        "secret_set",
        "send_payload",
        "send_for_all_actions",
        "headers",
        "is_active",
        "actions",
        "created_at",
        "updated_at",
    }
    assert created["secret_set"] is True and SECRET not in json.dumps(created)
    assert created["project"] == project.id and created["organization"] == project.organization_id
    assert created["send_for_all_actions"] is True and created["actions"] == [] and created["is_active"] is True

    other = create_webhook(alice, create_project_of(alice), "https://hooks.example.com/other")
    assert other["secret_set"] is False
    assert [w["id"] for w in alice.get(f"/api/webhooks/?project={project.id}").json()] == [created["id"]]
    assert [w["id"] for w in alice.get("/api/webhooks").json()] == [created["id"], other["id"]]
    assert alice.get(f"/api/webhooks/{created['id']}/").json() == created

    patch = {"is_active": False, "send_for_all_actions": False, "actions": [STORAGE_SYNC_FAILED], "project": 999}
    updated = alice.patch(f"/api/webhooks/{created['id']}", patch, format="json").json()
    assert updated["is_active"] is False and updated["actions"] == [STORAGE_SYNC_FAILED]
    assert updated["project"] == project.id  # the project cannot change (Label Studio's rule)
    assert Webhook.objects.get(pk=created["id"]).secret == SECRET  # omitted: kept
    alice.patch(f"/api/webhooks/{created['id']}", {"secret": ""}, format="json")
    assert alice.get(f"/api/webhooks/{created['id']}").json()["secret_set"] is False

    assert alice.delete(f"/api/webhooks/{created['id']}").status_code == 204
    assert alice.get(f"/api/webhooks/{created['id']}").status_code == 404


def create_project_of(client):
    from tests.conftest import create_project

    return create_project(client, "Second")


def test_another_organizations_webhooks_are_not_found(alice, bob, project, bob_project, trust):
    trust("https://hooks.example.com")
    webhook = create_webhook(alice, project, "https://hooks.example.com/a")
    assert bob.get("/api/webhooks/").json() == []
    for method in ("get", "patch", "put", "delete"):
        response = getattr(bob, method)(f"/api/webhooks/{webhook['id']}", {"url": "https://x.example"}, format="json")
        assert error_detail(response, 404)
    assert error_detail(bob.post(f"/api/webhooks/{webhook['id']}/test"), 404)
    assert error_detail(bob.get(f"/api/webhooks/?project={project.id}"), 404)
    response = bob.post("/api/webhooks/", {"project": project.id, "url": "https://hooks.example.com/b"}, format="json")
    assert error_detail(response, 404) == "Project not found"
    assert Webhook.objects.count() == 1 and Webhook.objects.get().url == "https://hooks.example.com/a"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"url": "hooks.example.com"}, "url"),
        ({"url": ""}, "url"),
        ({"url": None}, "url"),
        ({"url": ["https://hooks.example.com"]}, "url"),
        ({"project": None}, "project"),
        ({"project": "abc"}, "project"),
        ({"headers": {"Content-Type": "text/plain"}}, "headers"),
        ({"headers": {"X-Signature-256": "sha256=forged"}}, "headers"),
        ({"headers": {"bad name": "x"}}, "headers"),
        ({"headers": {"X-A": "line\r\nInjected: 1"}}, "headers"),
        ({"headers": {f"X-{n}": "v" for n in range(11)}}, "headers"),
        ({"headers": ["X-A"]}, "headers"),
        ({"headers": {"X-A": 1}}, "headers"),
        ({"actions": ["TASKS_CREATED"]}, "actions"),
        ({"actions": "STORAGE_SYNC_FAILED"}, "actions"),
        ({"secret": "x" * 1025}, "secret"),
        ({"is_active": "maybe"}, "is_active"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(alice, project, trust, fields, field):
    trust("https://hooks.example.com")
    body = {"project": project.id, "url": "https://hooks.example.com/ok", **fields}
    assert field in validation_errors(alice.post("/api/webhooks/", body, format="json"))
    assert not Webhook.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(alice):
    assert alice.post("/api/webhooks/", [1, 2], format="json").status_code == 400


def test_info_lists_the_storage_sync_actions(alice):
    info = alice.get("/api/webhooks/info/").json()
    assert set(info) == {STORAGE_SYNC_STARTED, STORAGE_SYNC_COMPLETED, STORAGE_SYNC_FAILED}
    assert info[STORAGE_SYNC_FAILED]["organization-only"] is False


def test_the_secret_is_encrypted_at_rest(alice, project, trust):
    trust("https://hooks.example.com")
    webhook = create_webhook(alice, project, "https://hooks.example.com/a", secret=SECRET)
    stored = stored_secret(webhook["id"])
    assert stored.startswith("fernet:") and SECRET not in stored


def stored_secret(pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {Webhook._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_reencrypt_storage_secrets_moves_webhook_secrets_to_the_first_key(project, settings):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    webhook = Webhook.objects.create(project=project, url="https://hooks.example.com/a", secret=SECRET)
    before = stored_secret(webhook.pk)
    settings.STORAGE_SECRET_KEYS = [Fernet.generate_key().decode(), *settings.STORAGE_SECRET_KEYS]
    call_command("reencrypt_storage_secrets", stdout=StringIO())
    after = stored_secret(webhook.pk)
    assert after != before and after.startswith("fernet:")
    settings.STORAGE_SECRET_KEYS = settings.STORAGE_SECRET_KEYS[:1]  # the old key dropped
    assert Webhook.objects.get(pk=webhook.pk).secret == SECRET


def test_the_admin_never_renders_the_secret_and_checks_the_url(project, trust, traps, client, django_user_model):
    trust("https://hooks.example.com")
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    webhook = Webhook.objects.create(project=project, url="https://hooks.example.com/a", secret=SECRET)
    url = f"/admin/io_storages/webhook/{webhook.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and SECRET.encode() not in page.content
    form = {
        "project": project.id,
        "url": "https://hooks.example.com/b",
        "secret": "",
        "send_payload": "on",
        "send_for_all_actions": "on",
        "headers": "{}",
        "is_active": "on",
        "actions": "[]",
    }
    assert client.post(url, form).status_code == 302
    webhook.refresh_from_db()
    assert webhook.url == "https://hooks.example.com/b" and webhook.secret == SECRET  # empty: kept
    trap = traps(host="127.0.0.2")
    response = client.post(url, {**form, "url": trap.url})
    assert response.status_code == 200 and b"loopback" in response.content  # the form again, with the error
    response = client.post(url, {**form, "actions": '["TASKS_CREATED"]'})
    assert response.status_code == 200 and b"A JSON list of actions" in response.content
    assert client.post(url, {**form, "clear_secret": "on"}).status_code == 302
    webhook.refresh_from_db()
    assert webhook.url == "https://hooks.example.com/b" and webhook.secret == ""
    assert trap.connections == 0


# --- deliveries -------------------------------------------------------------------------
def test_sync_events_are_signed_and_describe_the_sync(
    alice, project, s3_server, s3_storage, receivers, trust, django_capture_on_commit_callbacks
):
    receiver = receivers()
    trust(receiver.url)
    create_webhook(alice, project, f"{receiver.url}/hook", secret=SECRET, headers={"X-Team": "labeling"})
    with django_capture_on_commit_callbacks(execute=True):
        assert sync(alice, s3_storage)["status"] == "completed"
    started, completed = receiver.wait_for(2)

    for request, action in ((started, STORAGE_SYNC_STARTED), (completed, STORAGE_SYNC_COMPLETED)):
        assert request.method == "POST" and request.path == "/hook"
        assert verifies(SECRET, request)
        assert not verifies("another secret", request)
        body = json.loads(request.body)
        assert body["action"] == request.headers["X-Webhook-Event"] == action
        assert body["delivery_id"] == request.headers["X-Webhook-Delivery"]
        assert str(body["timestamp"]) == request.headers["X-Webhook-Timestamp"]
        assert request.headers["Content-Type"] == "application/json" and request.headers["X-Team"] == "labeling"
        assert request.headers["X-Webhook-Attempt"] == "1"
        assert body["project"] == {"id": project.id, "title": project.title}
        assert body["storage"] == {"id": s3_storage["id"], "type": "s3", "kind": "import", "title": s3_storage["title"]}
    assert started.headers["X-Webhook-Delivery"] != completed.headers["X-Webhook-Delivery"]
    first = json.loads(started.body)
    assert first["status"] == "in_progress" and first["finished_at"] is None and first["error"] is None
    body = json.loads(completed.body)
    assert body["status"] == "completed" and body["last_sync_count"] == 2 and body["error"] is None
    assert body["counts"] == {"tasks_existed": 0}
    assert body["duration"] >= 0 and body["started_at"] <= body["finished_at"]
    # A tampered body no longer verifies.
    forged = type(completed)(completed.method, completed.path, completed.headers, completed.body.replace(b"2", b"3"))
    assert not verifies(SECRET, forged)


def test_a_failed_sync_sends_storage_sync_failed_with_its_first_error(
    alice, project, s3_server, s3_bucket, receivers, trust, django_capture_on_commit_callbacks
):
    from io_storages.s3.models import S3ImportStorage

    receiver = receivers()
    trust(s3_server, receiver.url)
    webhook = create_webhook(alice, project, receiver.url, send_for_all_actions=False, actions=[STORAGE_SYNC_FAILED])
    storage = S3ImportStorage.objects.create(project=project, **s3_config(s3_server, "no-such-bucket-7f3a"))
    with django_capture_on_commit_callbacks(execute=True):
        assert sync(alice, {"id": storage.pk})["status"] == "failed"
    (request,) = receiver.wait_for(1)
    body = json.loads(request.body)
    assert body["action"] == STORAGE_SYNC_FAILED and body["status"] == "failed"
    assert "no-such-bucket-7f3a" in body["error"] and "\n" not in body["error"]
    assert body["finished_at"] and body["duration"] >= 0
    assert "X-Signature-256" not in request.headers  # no secret, no signature
    assert Webhook.objects.get(pk=webhook["id"]).actions == [STORAGE_SYNC_FAILED]


def test_a_sync_whose_worker_died_sends_storage_sync_failed_when_the_health_check_sees_it(
    alice, project, s3_server, s3_storage, receivers, trust, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from io_storages.s3.models import S3ImportStorage

    receiver = receivers()
    trust(receiver.url)
    create_webhook(alice, project, receiver.url, send_for_all_actions=False, actions=[STORAGE_SYNC_FAILED])
    storage = S3ImportStorage.objects.get(pk=s3_storage["id"])
    storage.info_set_queued()
    storage.info_set_in_progress()  # ... and then its worker was killed: no more pings
    stale = (timezone.now() - timedelta(seconds=10 * settings.STORAGE_IN_PROGRESS_TIMER)).isoformat()
    S3ImportStorage.objects.filter(pk=storage.pk).update(meta={**storage.meta, "time_last_ping": stale})
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.get(f"/api/storages/s3/{storage.pk}").json()["status"] == "failed"
    (request,) = receiver.wait_for(1)
    body = json.loads(request.body)
    assert body["action"] == STORAGE_SYNC_FAILED and "no progress ping" in body["error"]


def test_without_payload_the_body_names_only_the_action(
    alice, project, s3_server, s3_storage, receivers, trust, django_capture_on_commit_callbacks
):
    receiver = receivers()
    trust(receiver.url)
    create_webhook(alice, project, receiver.url, secret=SECRET, send_payload=False, actions=[STORAGE_SYNC_COMPLETED])
    Webhook.objects.update(send_for_all_actions=False)
    with django_capture_on_commit_callbacks(execute=True):
        sync(alice, s3_storage)
    (request,) = receiver.wait_for(1)
    assert set(json.loads(request.body)) == {"action", "delivery_id", "timestamp"} and verifies(SECRET, request)


def test_inactive_webhooks_and_other_projects_webhooks_get_nothing(
    alice, project, s3_server, s3_storage, receivers, trust, django_capture_on_commit_callbacks
):
    receiver, active = receivers(), receivers()
    trust(receiver.url, active.url)
    create_webhook(alice, project, receiver.url, is_active=False)
    create_webhook(alice, create_project_of(alice), receiver.url)
    create_webhook(alice, project, active.url, send_for_all_actions=False, actions=[STORAGE_SYNC_COMPLETED])
    with django_capture_on_commit_callbacks(execute=True):
        sync(alice, s3_storage)
    (request,) = active.wait_for(1)  # the one active webhook of the project, its one action
    assert json.loads(request.body)["action"] == STORAGE_SYNC_COMPLETED
    assert receiver.requests == []


def test_a_dead_receiver_does_not_change_the_sync(
    alice, project, s3_storage, trust, caplog, django_capture_on_commit_callbacks
):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every attempt fails
    trust(dead)
    create_webhook(alice, project, dead)
    with django_capture_on_commit_callbacks(execute=True):
        result = sync(alice, s3_storage)
    failures = [
        r for r in caplog.records if r.name == "io_storages.webhooks.delivery" and "Could not reach" in r.message
    ]
    assert len(failures) == 2  # started and completed: both sent, both failed
    assert result["status"] == "completed" and result["last_sync_count"] == 2
    assert project.tasks.count() == 2


def test_the_test_action_sends_a_signed_ping(alice, project, receivers, trust):
    receiver = receivers(statuses=[204])
    trust(receiver.url)
    webhook = create_webhook(alice, project, receiver.url, secret=SECRET, is_active=False)
    answer = alice.post(f"/api/webhooks/{webhook['id']}/test").json()
    assert answer["ok"] is True and answer["status_code"] == 204
    (request,) = receiver.requests
    assert verifies(SECRET, request) and json.loads(request.body)["action"] == "WEBHOOK_TEST"
    assert json.loads(request.body)["webhook"] == {"id": webhook["id"]}


# --- retries ----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_500_is_retried_in_process(alice, project, s3_server, s3_storage, receivers, trust, settings):
    """Without Redis the retry runs on a timer thread (committed rows: a transactional test)."""
    settings.REDIS_URL = ""
    jobs.forget_redis_state()
    settings.WEBHOOK_MAX_ATTEMPTS, settings.WEBHOOK_RETRY_BACKOFF = 3, 0.05
    receiver = receivers(statuses=[500, 200])
    trust(receiver.url)
    create_webhook(
        alice, project, receiver.url, secret=SECRET, send_for_all_actions=False, actions=["STORAGE_SYNC_COMPLETED"]
    )
    assert sync(alice, s3_storage)["status"] == "completed"
    first, second = receiver.wait_for(2)
    assert first.headers["X-Webhook-Delivery"] == second.headers["X-Webhook-Delivery"]
    assert (first.headers["X-Webhook-Attempt"], second.headers["X-Webhook-Attempt"]) == ("1", "2")
    assert verifies(SECRET, first) and verifies(SECRET, second)
    assert json.loads(second.body)["action"] == STORAGE_SYNC_COMPLETED


@pytest.fixture
def webhook_queue(redis_queues, settings):
    """Deliveries go to a real Redis queue and wait for a worker."""
    return redis_queues(settings.WEBHOOK_QUEUE)


@needs_redis
@pytest.mark.parametrize("statuses, outcome", [([500, 200], "finished"), ([500, 503], "failed")])
def test_a_500_is_retried_by_rq(alice, project, receivers, trust, settings, webhook_queue, statuses, outcome):
    from rq import SimpleWorker

    settings.WEBHOOK_MAX_ATTEMPTS = 2  # RQ's Retry; no backoff here, so the burst worker runs both
    receiver = receivers(statuses=statuses)
    trust(receiver.url)
    webhook = create_webhook(alice, project, receiver.url, secret=SECRET)
    job_id = enqueue_delivery(webhook["id"], STORAGE_SYNC_COMPLETED, {"storage": {"id": 1}})
    assert jobs.job_state(job_id) == "queued" and receiver.requests == []
    SimpleWorker([webhook_queue], connection=webhook_queue.connection).work(burst=True)
    first, second = receiver.requests
    assert (first.headers["X-Webhook-Attempt"], second.headers["X-Webhook-Attempt"]) == ("1", "2")
    assert first.headers["X-Webhook-Delivery"] == second.headers["X-Webhook-Delivery"]
    assert verifies(SECRET, second)
    assert jobs.job_state(job_id) == outcome


def test_a_4xx_is_final_and_a_500_schedules_a_retry(alice, project, receivers, trust, settings):
    """In-process, the job schedules its next attempt on a timer thread: none after a 410."""
    import threading

    from io_storages.webhooks.delivery import deliver_job

    def timers():
        return {t for t in threading.enumerate() if isinstance(t, threading.Timer)}

    settings.WEBHOOK_MAX_ATTEMPTS, settings.WEBHOOK_RETRY_BACKOFF = 3, 600  # a retry would wait
    gone, down = receivers(statuses=[410]), receivers(statuses=[500])
    trust(gone.url, down.url)
    before = timers()
    final = create_webhook(alice, project, gone.url)
    assert deliver_job(final["id"], STORAGE_SYNC_COMPLETED, {}, "d-1")["status_code"] == 410
    assert len(gone.requests) == 1 and timers() == before
    retried = create_webhook(alice, project, down.url)
    assert deliver_job(retried["id"], STORAGE_SYNC_COMPLETED, {}, "d-2")["status_code"] == 500
    (timer,) = timers() - before
    timer.cancel()
    assert len(down.requests) == 1


# --- SSRF -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "{trap}",
        "{trap}/hook",
        "http://localhost:{port}/",
        "http://127.0.0.2:{port}\\@hooks.example.com/",
        "http://2130706434:{port}/",
        "http://[::ffff:127.0.0.2]:{port}/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_a_refused_target_is_a_400_naming_url_and_receives_nothing(alice, project, trust, traps, url):
    trust("https://hooks.example.com")
    trap = traps(host="127.0.0.2")
    typed = url.format(trap=trap.url, port=trap.port)
    errors = validation_errors(alice.post("/api/webhooks/", {"project": project.id, "url": typed}, format="json"))
    assert list(errors) == ["url"]
    webhook = create_webhook(alice, project, "https://hooks.example.com/ok")
    assert "url" in validation_errors(alice.patch(f"/api/webhooks/{webhook['id']}", {"url": typed}, format="json"))
    assert Webhook.objects.get().url == "https://hooks.example.com/ok"
    assert trap.connections == 0 and trap.sent == b""


def test_a_stored_webhook_to_a_refused_target_is_never_sent(
    alice, project, s3_storage, traps, django_capture_on_commit_callbacks
):
    """A row saved past the API (the admin before a check, an old row): checked at delivery."""
    trap = traps(host="127.0.0.2")
    webhook = Webhook.objects.create(project=project, url=trap.url, secret=SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        assert sync(alice, s3_storage)["status"] == "completed"
    answer = alice.post(f"/api/webhooks/{webhook.pk}/test").json()
    assert answer["ok"] is False and answer["status_code"] is None and "loopback" in answer["detail"]
    assert trap.connections == 0 and trap.sent == b""


def test_a_name_answering_a_private_address_to_the_connect_is_refused_on_the_socket(
    alice, project, trust, traps, monkeypatch
):
    """DNS rebinding: the name is public when checked, loopback when connected. The peer check
    on the connected socket refuses it before a byte is sent."""
    trust()
    trap = traps(host="127.0.0.2")
    real_getaddrinfo = socket.getaddrinfo
    answers = ["93.184.215.14", "127.0.0.2"]  # the check's lookup, then the connect's

    def getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example.com":
            host = answers.pop(0) if len(answers) > 1 else answers[0]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    webhook = Webhook.objects.create(project=project, url=f"http://hooks.example.com:{trap.port}/", secret=SECRET)
    answer = alice.post(f"/api/webhooks/{webhook.pk}/test").json()
    assert answer["ok"] is False and "connected to a loopback address (127.0.0.2)" in answer["detail"]
    assert trap.sent == b""


def test_redirects_are_not_followed(alice, project, receivers, trust, traps):
    trap = traps(host="127.0.0.1")
    receiver = receivers(statuses=[307], headers={"Location": f"{trap.url}/elsewhere"})
    trust(receiver.url, trap.url)  # even a trusted target is not reached through a redirect
    webhook = create_webhook(alice, project, receiver.url)
    answer = alice.post(f"/api/webhooks/{webhook['id']}/test").json()
    assert answer == {"ok": False, "status_code": 307, "detail": answer["detail"]}
    assert "redirects are not followed" in answer["detail"]
    assert len(receiver.requests) == 1 and trap.connections == 0

"""The createuser command and both paths of the job runner (in-process and RQ + worker)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import jobs
from core.models import Organization
from tests.fixtures.job_redis import needs_redis

pytestmark = pytest.mark.django_db


def test_createuser_creates_user_organization_and_token(capsys):
    call_command("createuser", "a@example.com", "--password", "x", "--token", "T1", "--organization", "Acme")
    assert capsys.readouterr().out.strip() == "T1"
    user = get_user_model().objects.get(email="a@example.com")
    assert user.check_password("x")
    assert list(user.organizations.values_list("title", flat=True)) == ["Acme"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token T1")
    assert client.get("/api/projects/").status_code == 200


def test_createuser_again_updates_password_and_token(capsys):
    call_command("createuser", "a@example.com", "--password", "x", "--token", "T1")
    call_command("createuser", "a@example.com", "--password", "y", "--token", "T2")
    assert capsys.readouterr().out.split() == ["T1", "T2"]
    user = get_user_model().objects.get(email="a@example.com")
    assert user.check_password("y")
    assert list(Token.objects.filter(user=user).values_list("key", flat=True)) == ["T2"]
    assert Organization.objects.filter(members=user).count() == 1


def test_createuser_without_token_prints_a_generated_one(capsys):
    call_command("createuser", "b@example.com", "--password", "x")
    key = capsys.readouterr().out.strip()
    assert Token.objects.get(key=key).user.email == "b@example.com"


def record_call(label):
    """A job used by the tests: leaves a trace in the database."""
    Organization.objects.create(title=f"job ran: {label}")


def test_jobs_run_in_process_without_redis(settings):
    settings.REDIS_URL = ""
    jobs.forget_redis_state()
    assert jobs.enqueue(record_call, "inline") is None
    assert Organization.objects.filter(title="job ran: inline").exists()


def test_jobs_run_in_process_when_redis_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    jobs.forget_redis_state()
    assert not jobs.redis_available()
    assert jobs.enqueue(record_call, "fallback") is None
    assert Organization.objects.filter(title="job ran: fallback").exists()


def test_in_process_job_failure_does_not_propagate(settings):
    settings.REDIS_URL = ""
    jobs.forget_redis_state()
    assert jobs.enqueue(int, "not a number") is None


@needs_redis
def test_jobs_go_through_redis_and_a_real_worker(redis_queues):
    from rq import SimpleWorker

    queue = redis_queues("default")

    job_id = jobs.enqueue(record_call, "worker", queue_name="default")
    assert job_id and jobs.job_state(job_id) == "queued"
    assert not Organization.objects.filter(title="job ran: worker").exists()

    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert jobs.job_state(job_id) == "finished"
    assert Organization.objects.filter(title="job ran: worker").exists()
    queue.connection.flushdb()
    assert jobs.job_state(job_id) is None  # vanished jobs are reported as such

"""Shared fixtures: users in organizations with API clients, Redis isolation, report header."""

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.providers import ADAPTERS

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.gcs",
    "tests.fixtures.azure",
    "tests.fixtures.redis_server",
    "tests.fixtures.localfiles",
    "tests.fixtures.listeners",
    "tests.fixtures.job_redis",
]


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    where = f"{db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''} {db['NAME']}".strip()
    queue = f"RQ on Redis {settings.REDIS_URL}" if settings.REDIS_URL else "in-process jobs (no REDIS_URL)"
    return [f"database: {where}", f"job queue: {queue}"]


@pytest.fixture(scope="session", autouse=True)
def _jobs_in_the_foreground():
    """Without Redis, jobs run in the caller's thread, so a test sees a sync's result when its
    request returns and the test's own transaction holds every row the job reads. Tests of
    the background pool set JOBS_IN_PROCESS="background" themselves."""
    from tests.fixtures.session_settings import session_setting

    with session_setting("JOBS_IN_PROCESS", "foreground"):
        yield


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Users are made for nearly every test: PBKDF2's million rounds cost 0.5 s each on a
    slow core, most of the suite's time. The tests check who may log in, not the hash's
    strength; the service's own setting is untouched (a ServiceProcess hashes as deployed)."""
    from tests.fixtures.session_settings import session_setting

    with session_setting("PASSWORD_HASHERS", ["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _fresh_job_runner():
    """Each test re-checks Redis reachability and starts with empty queues."""
    from core import jobs

    jobs.forget_redis_state()
    if jobs.redis_available():
        jobs.get_queue().connection.flushdb()
    yield
    jobs.forget_redis_state()


@pytest.fixture
def emulators_on_loopback(settings):
    """Test servers listen on 127.0.0.1, which the SSRF guard refuses by default."""
    settings.SSRF_PROTECTION_ENABLED = False


@pytest.fixture(params=sorted(ADAPTERS))
def provider(request, emulators_on_loopback):
    """Each provider's contract adapter (tests/adapter.py) bound to its real server."""
    adapter = ADAPTERS[request.param]
    return adapter(request.getfixturevalue(adapter.server_fixture))


@pytest.fixture
def make_member(db):
    """make_member(email, organization_title) -> APIClient authenticated with the user's token;
    the client has `.user`, `.token` and `.organization` attributes."""
    from django.contrib.auth import get_user_model

    from core.models import Membership, Organization

    def make(email="alice@example.com", organization="Org A"):
        user = get_user_model().objects.create_user(username=email, email=email, password="pw")
        org, _ = Organization.objects.get_or_create(title=organization)
        Membership.objects.create(user=user, organization=org)
        token = Token.objects.create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        client.user, client.token, client.organization = user, token.key, org
        return client

    return make


@pytest.fixture
def alice(make_member):
    return make_member("alice@example.com", "Org A")


@pytest.fixture
def bob(make_member):
    """A user of another organization."""
    return make_member("bob@example.com", "Org B")


def create_project(client, title):
    """A project created through the API by `client`'s user (in the user's organization)."""
    from projects.models import Project

    response = client.post(
        "/api/projects/",
        {"title": title, "label_config": '<View><Image name="img" value="$image"/></View>'},
        format="json",
    )
    assert response.status_code == 201, response.content
    return Project.objects.get(pk=response.json()["id"])


@pytest.fixture
def project(alice):
    return create_project(alice, "Images")


@pytest.fixture
def bob_project(bob):
    """A project of another organization."""
    return create_project(bob, "Bob's")


@pytest.fixture
def ssrf_on(settings, monkeypatch):
    """SSRF protection on (the default), no trusted endpoints from the developer's
    environment, and an empty guard cache."""
    from io_storages import ssrf

    settings.SSRF_PROTECTION_ENABLED = True
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SSRF_TRUSTED_ENDPOINTS"):
        monkeypatch.delenv(var, raising=False)
    ssrf.clear_guard_cache()
    yield
    ssrf.clear_guard_cache()

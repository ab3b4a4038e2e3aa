"""At rest and by default: storage secrets are encrypted in the database (keys rotate), the data
directory is private, docker-compose has no default SECRET_KEY, cookies and HSTS follow HTTPS,
and /django-rq/ says when there is no Redis instead of failing."""

import json
import os
import stat
import subprocess
import sys
import types
from importlib import import_module
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from io_storages.registry import PROVIDERS, storage_model
from tests.fixtures.servers import free_port
from tests.storage_helpers import sync

ROOT = Path(__file__).resolve().parent.parent


def fields_module():
    return import_module("io_storages.fields")


def stored(model, pk, names):
    """The values of `names` as the database holds them (no decryption)."""
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(n).column) for n in names)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(model._meta.db_table)} WHERE id = %s", [pk])
        return dict(zip(names, cursor.fetchone()))


def make_storage(alice, project, provider, **fields_):
    location = provider.new_location()
    provider.put(location, "a.json", b'{"n": 1}')
    config = {"project": project.id, **provider.config(location), **fields_}
    response = alice.post(f"/api/storages/{provider.kind}/", config, format="json")
    assert response.status_code == 201, response.content
    return storage_model(provider.kind).objects.get(pk=response.json()["id"])


# --- secrets encrypted at rest -----------------------------------------------------------


@pytest.mark.django_db
def test_secrets_are_encrypted_in_the_database_and_work_as_before(alice, project, provider):
    if not storage_model(provider.kind).secret_fields:
        assert provider.kind == "localfiles"
        return
    storage = make_storage(alice, project, provider)
    names = type(storage).secret_fields
    raw = stored(type(storage), storage.pk, names)
    given = {name: getattr(storage, name) for name in names if getattr(storage, name)}
    assert given, "the adapter gives a secret"
    for name, plain in given.items():
        assert raw[name].startswith("fernet:") and plain not in raw[name], (name, raw[name])
        for secret in provider.secret_values:
            assert secret not in raw[name]
    # The API is write-only as before, keeps secrets a PATCH omits, and syncs with them.
    url = f"/api/storages/{provider.kind}/{storage.pk}"
    body = alice.patch(url, {"title": "renamed"}, format="json").json()
    assert not set(names) & set(body) and not any(s in json.dumps(body) for s in provider.secret_values)
    again = type(storage).objects.get(pk=storage.pk)
    assert {name: getattr(again, name) for name in given} == given
    assert sync(alice, {"id": storage.pk}, kind=provider.kind)["status"] == "completed"


@pytest.mark.django_db
def test_the_admin_keeps_an_encrypted_secret_left_empty(alice, project, redis_server, emulators_on_loopback, client):
    from django.contrib.auth import get_user_model

    from tests.fixtures.redis_server import REDIS_PASSWORD, RedisAdapter

    storage = make_storage(alice, project, RedisAdapter(redis_server))
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    url = f"/admin/io_storages/redisimportstorage/{storage.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and REDIS_PASSWORD.encode() not in page.content and b"fernet:" not in page.content
    form = {"project": project.id, "path": storage.path, "host": storage.host, "port": storage.port, "db": 1}
    assert client.post(url, {**form, "title": "via admin", "password": ""}).status_code == 302
    again = type(storage).objects.get(pk=storage.pk)
    assert again.title == "via admin" and again.password == REDIS_PASSWORD
    assert stored(type(storage), storage.pk, ["password"])["password"].startswith("fernet:")


@pytest.mark.django_db
def test_keys_rotate_and_reencrypt_storage_secrets_moves_every_secret_to_the_first_key(
    alice, project, s3_server, emulators_on_loopback, settings
):
    from tests.fixtures.s3 import S3_SECRET_KEY, S3Adapter

    storage = make_storage(alice, project, S3Adapter(s3_server), aws_session_token="tok-1")
    old, new = list(settings.STORAGE_SECRET_KEYS), Fernet.generate_key().decode()
    names = ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"]
    before = stored(type(storage), storage.pk, names)

    settings.STORAGE_SECRET_KEYS = [new, *old]  # the new key first, the old one still decrypts
    assert type(storage).objects.get(pk=storage.pk).aws_secret_access_key == S3_SECRET_KEY
    out = _command_output()
    assert "Re-encrypted 3 storage secret(s)" in out
    after = stored(type(storage), storage.pk, names)
    assert all(after[n] != before[n] and after[n].startswith("fernet:") for n in names)
    assert "Re-encrypted 0" in _command_output()  # already under the first key: left alone

    settings.STORAGE_SECRET_KEYS = [new]  # the old key dropped
    assert type(storage).objects.get(pk=storage.pk).aws_session_token == "tok-1"
    assert sync(alice, {"id": storage.pk}, kind="s3")["status"] == "completed"

    settings.STORAGE_SECRET_KEYS = ["a key that never encrypted anything"]
    with pytest.raises(fields_module().SecretKeyError, match="STORAGE_SECRET_KEYS"):
        type(storage).objects.get(pk=storage.pk)
    with pytest.raises(CommandError, match=f"S3ImportStorage #{storage.pk} aws_access_key_id"):
        _command_output()


@pytest.mark.django_db
def test_a_worker_with_other_keys_says_so_on_the_storage(alice, project, s3_server, emulators_on_loopback, settings):
    from io_storages.jobs import run_sync_job
    from tests.fixtures.s3 import S3Adapter

    storage = make_storage(alice, project, S3Adapter(s3_server))
    settings.STORAGE_SECRET_KEYS = ["the worker's own key"]  # e.g. another SECRET_KEY than the web's
    run_sync_job(storage._meta.label, storage.pk)
    settings.STORAGE_SECRET_KEYS = [settings.SECRET_KEY]
    failed = type(storage).objects.get(pk=storage.pk)
    assert failed.status == "failed" and "STORAGE_SECRET_KEYS" in failed.traceback


def _command_output():
    from io import StringIO

    out = StringIO()
    call_command("reencrypt_storage_secrets", stdout=out)
    return out.getvalue()


def test_a_key_entry_is_a_fernet_key_or_any_string():
    fields = fields_module()
    key = Fernet.generate_key()
    assert fields.fernet_key(key.decode()) == key
    derived = fields.fernet_key("some SECRET_KEY value")
    assert derived == fields.fernet_key("some SECRET_KEY value") != fields.fernet_key("another")
    Fernet(derived)  # a valid key


@pytest.mark.django_db
def test_the_migration_encrypts_plaintext_rows_and_reverses(alice, project, redis_server, emulators_on_loopback):
    from django.db.models import Value

    from tests.fixtures.redis_server import REDIS_PASSWORD, RedisAdapter

    migration = import_module("io_storages.migrations.0004_encrypt_storage_secrets")
    storage = make_storage(alice, project, RedisAdapter(redis_server))
    model = type(storage)
    # A row as 0003 left it: plaintext.
    model.objects.filter(pk=storage.pk).update(password=Value(REDIS_PASSWORD))
    assert stored(model, storage.pk, ["password"]) == {"password": REDIS_PASSWORD}
    assert model.objects.get(pk=storage.pk).password == REDIS_PASSWORD  # plaintext reads as it is

    editor = types.SimpleNamespace(connection=connection)
    migration.encrypt_secrets(apps, editor)
    encrypted = stored(model, storage.pk, ["password"])["password"]
    assert encrypted.startswith("fernet:") and REDIS_PASSWORD not in encrypted
    migration.encrypt_secrets(apps, editor)  # applied again: nothing changes
    assert stored(model, storage.pk, ["password"])["password"] == encrypted
    assert model.objects.get(pk=storage.pk).password == REDIS_PASSWORD

    migration.decrypt_secrets(apps, editor)
    assert stored(model, storage.pk, ["password"]) == {"password": REDIS_PASSWORD}


def test_the_secret_fields_have_no_change_without_a_migration():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "io_storages", "--check", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": "sqlite:///:memory:"},
    )
    secret_fields = {name for p in PROVIDERS.values() for name in p.import_model.secret_fields}
    pending = [line for line in result.stdout.splitlines() if any(f" {name} " in line for name in secret_fields)]
    assert not pending, result.stdout + result.stderr


# --- defaults of a fresh process ---------------------------------------------------------


def fresh_settings(tmp_path, names, data_dir=None, **env):
    """The settings `names` of a new interpreter started with only `env`."""
    script = "import json, django; django.setup(); from django.conf import settings; "
    script += f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    env = {
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "DATA_DIR": str(data_dir or tmp_path),
        "PATH": "/usr/bin:/bin",
        **env,
    }
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_data_dir_is_created_private_and_an_open_one_is_tightened(tmp_path):
    new = tmp_path / "new" / "data"
    fresh_settings(tmp_path, ["DATA_DIR"], data_dir=new)
    assert stat.S_IMODE(new.stat().st_mode) == 0o700
    assert stat.S_IMODE((new / "secret_key").stat().st_mode) == 0o600
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    fresh_settings(tmp_path, ["DATA_DIR"], data_dir=existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o700


def test_cookie_hsts_and_key_settings_from_the_environment(tmp_path):
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_SSL_REDIRECT",
        "STORAGE_SECRET_KEYS",
        "SECRET_KEY",
    ]
    plain = fresh_settings(tmp_path, names, SECRET_KEY="k1")
    assert plain == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_SSL_REDIRECT": False,
        "STORAGE_SECRET_KEYS": ["k1"],
        "SECRET_KEY": "k1",
    }
    https = fresh_settings(
        tmp_path,
        names,
        SECRET_KEY="k1",
        HOSTNAME="https://labels.example.com",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SECURE_HSTS_SECONDS="31536000",
        STORAGE_SECRET_KEYS="new-key, old-key",
    )
    assert https["SESSION_COOKIE_SECURE"] is True and https["CSRF_COOKIE_SECURE"] is True
    assert https["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert https["SECURE_HSTS_SECONDS"] == 31536000 and https["STORAGE_SECRET_KEYS"] == ["new-key", "old-key"]
    off = fresh_settings(tmp_path, names, HOSTNAME="https://x.example.com", SESSION_COOKIE_SECURE="false")
    assert off["SESSION_COOKIE_SECURE"] is False and off["CSRF_COOKIE_SECURE"] is True


@pytest.mark.django_db
def test_hsts_and_secure_cookies_behind_a_tls_proxy(settings, django_user_model):
    django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SESSION_COOKIE_SECURE = True
    client = Client()
    plain = client.get("/admin/login/")
    assert "Strict-Transport-Security" not in plain
    secure = client.post("/admin/login/", {"username": "ops", "password": "pw"}, HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 302
    assert secure["Strict-Transport-Security"] == "max-age=3600" and secure.cookies["sessionid"]["secure"]


def test_docker_compose_has_no_default_secret_key():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    value = compose["x-app"]["environment"]["SECRET_KEY"]
    assert value.startswith("${SECRET_KEY:?") and value.endswith("}"), value


# --- /django-rq/ without Redis -----------------------------------------------------------


@pytest.fixture
def staff(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _without_redis(settings, url):
    from core import jobs

    settings.REDIS_URL = url
    queues = settings.RQ_QUEUES
    settings.RQ_QUEUES = {name: {**config, "URL": url or "redis://127.0.0.1:6379/0"} for name, config in queues.items()}
    jobs.forget_redis_state()


def test_django_rq_says_redis_is_not_configured(staff, settings):
    _without_redis(settings, "")
    response = staff.get("/django-rq/")
    assert response.status_code == 503 and b"not configured" in response.content


@pytest.mark.parametrize(
    "path", ["/django-rq/", "/django-rq/queues/0/", "/django-rq/workers/0/", "/django-rq/stats.json"]
)
def test_django_rq_says_redis_does_not_answer(staff, settings, path):
    _without_redis(settings, f"redis://127.0.0.1:{free_port()}/0")
    response = staff.get(path)
    assert response.status_code == 503 and b"does not answer" in response.content, response.content[:300]


def test_django_rq_stays_admin_only(settings, alice):
    _without_redis(settings, "")
    response = Client().get("/django-rq/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert alice.get("/django-rq/").status_code == 302  # a token is not a staff session


def test_django_rq_works_with_redis(staff, settings):
    from core import jobs

    if not jobs.redis_available():
        pytest.skip("no Redis on this machine")
    assert staff.get("/django-rq/").status_code == 200

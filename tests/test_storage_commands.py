"""The sync_storage and list_storages commands and the storage admin, against a real moto server."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from io_storages.registry import PROVIDERS, all_storage_models
from io_storages.s3.models import S3ExportStorage, S3ImportStorage
from tests.fixtures.s3 import s3_admin, s3_config
from tests.storage_helpers import create_storage, put

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]

SECRET_KEY_ID = "AKIA-ADMIN-TEST-KEY-ID"
SECRET = "s3cr3t-never-shown-0123456789"


@pytest.fixture
def bucket(s3_server, s3_bucket):
    return s3_server, s3_bucket


def make_import(alice, project, bucket, **fields):
    endpoint, name = bucket
    config = s3_config(endpoint, name, use_blob_urls=True, **fields)
    return S3ImportStorage.objects.get(pk=create_storage(alice, project, config)["id"])


def make_export(alice, project, bucket, **fields):
    endpoint, name = bucket
    config = s3_config(endpoint, name, prefix="out", **fields)
    return S3ExportStorage.objects.get(pk=create_storage(alice, project, config, export=True)["id"])


def run(*args, **options):
    """call_command capturing both streams: (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def objects(endpoint, bucket):
    listing = s3_admin(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listing)


def new_project(client, title):
    response = client.post(
        "/api/projects/",
        {"title": title, "label_config": '<View><Image name="img" value="$image"/></View>'},
        format="json",
    )
    assert response.status_code == 201, response.content
    from projects.models import Project

    return Project.objects.get(pk=response.json()["id"])


# --- sync_storage ---------------------------------------------------------------
def test_sync_storage_imports_objects_and_prints_the_summary(alice, project, bucket):
    endpoint, name = bucket
    for key in ["a.jpg", "b.jpg"]:
        put(endpoint, name, key, b"x")
    storage = make_import(alice, project, bucket)
    out, err = run("sync_storage", "s3", storage.pk)
    assert out.startswith(f"s3 storage #{storage.pk}: completed, 2 tasks created, 0 already existed, ")
    assert out.rstrip().endswith(" s")
    assert project.tasks.count() == 2
    storage.refresh_from_db()
    assert storage.status == "completed" and storage.last_sync_count == 2 and storage.last_sync is not None
    assert err == ""  # no bar (not a terminal) and nothing went wrong


def test_sync_storage_again_creates_nothing(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    run("sync_storage", "s3", storage.pk)
    out, _ = run("sync_storage", "s3", str(storage.pk))
    assert f"s3 storage #{storage.pk}: completed, 0 tasks created, 1 already existed" in out
    assert project.tasks.count() == 1


def test_sync_storage_shows_a_progress_bar_on_request(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    _, err = run("sync_storage", "s3", storage.pk, progress=True)
    assert f"s3 import #{storage.pk}" in err and "1 tasks" in err and "existed=0" in err


def test_sync_storage_runs_in_this_process_not_through_the_job_runner(alice, project, bucket, monkeypatch):
    from core import jobs

    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    monkeypatch.setattr(jobs, "enqueue", lambda *a, **k: pytest.fail("sync_storage must not enqueue a job"))
    out, _ = run("sync_storage", "s3", storage.pk)
    assert "completed, 1 tasks created" in out
    storage.refresh_from_db()
    assert storage.last_sync_job is None


def test_sync_storage_reports_object_errors_on_stderr(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "good.json", {"image": "x.jpg"})
    put(endpoint, name, "bad.json", b"{not json")
    storage = make_import(alice, project, bucket)
    storage.use_blob_urls = False
    storage.save()
    out, err = run("sync_storage", "s3", storage.pk)
    assert f"s3 storage #{storage.pk}: completed_with_errors, 1 tasks created" in out
    assert "bad.json" in err


def test_sync_storage_failure_exits_1_with_the_error_on_stderr(alice, project, bucket):
    put(*bucket, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    S3ImportStorage.objects.filter(pk=storage.pk).update(bucket="no-such-bucket-for-this-test")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("sync_storage", "s3", storage.pk, stdout=out, stderr=err)
    assert raised.value.returncode == 1
    assert out.getvalue().startswith(f"s3 storage #{storage.pk}: failed, 0 tasks created")
    assert err.getvalue().strip()  # the error text
    storage.refresh_from_db()
    assert storage.status == "failed" and storage.traceback.strip() in err.getvalue()


@pytest.fixture
def labeled(alice, project):
    """The project with two tasks, each with one annotation (imported before any export storage)."""
    tasks = [{"data": {"image": f"s3://in/{i}.jpg"}, "annotations": [{"result": [{"n": i}]}]} for i in range(2)]
    assert alice.post(f"/api/projects/{project.id}/import", tasks, format="json").status_code == 201
    return project


def test_sync_storage_export_writes_annotations(alice, labeled, bucket):
    endpoint, name = bucket
    storage = make_export(alice, labeled, bucket)
    out, _ = run("sync_storage", "s3", storage.pk, "--export")
    assert out.startswith(f"s3 storage #{storage.pk}: completed, 2 annotations exported, ")
    ids = sorted(labeled.annotations.values_list("id", flat=True))
    assert objects(endpoint, name) == [f"out/{i}" for i in ids]
    assert storage.links.count() == 2

    out, _ = run("sync_storage", "s3", storage.pk, "--export", "--only-new")
    assert f"s3 storage #{storage.pk}: completed, 0 annotations exported" in out


def test_only_new_needs_export(alice, project, bucket):
    put(*bucket, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    with pytest.raises(CommandError, match="--export"):
        run("sync_storage", "s3", storage.pk, "--only-new")


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope", "1"], "Unknown storage type 'nope'"),
        (["s3", "987654"], "s3 import storage #987654 does not exist"),
        (["s3", "987654", "--export"], "s3 export storage #987654 does not exist"),
    ],
)
def test_sync_storage_unknown_type_or_id(args, message):
    with pytest.raises(CommandError, match=message):
        run("sync_storage", *args)


def test_sync_storage_refuses_while_a_sync_is_running_unless_forced(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    storage.info_set_queued()
    storage.info_set_in_progress()  # fresh ping: the health check keeps it running
    with pytest.raises(CommandError, match="already in_progress.*--force"):
        run("sync_storage", "s3", storage.pk)
    storage.refresh_from_db()
    assert storage.status == "in_progress" and project.tasks.count() == 0

    out, err = run("sync_storage", "s3", storage.pk, "--force")
    assert "completed, 1 tasks created" in out and "--force" in err


def test_sync_storage_runs_when_the_running_sync_died(alice, project, bucket, settings):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket)
    storage.info_set_queued()
    storage.info_set_in_progress()
    old = (timezone.now() - timedelta(seconds=10 * settings.STORAGE_IN_PROGRESS_TIMER)).isoformat()
    S3ImportStorage.objects.filter(pk=storage.pk).update(meta={**storage.meta, "time_last_ping": old})
    out, _ = run("sync_storage", "s3", storage.pk)
    assert "completed, 1 tasks created" in out


# --- list_storages --------------------------------------------------------------
def table(out):
    lines = out.splitlines()
    assert lines[0].split() == [
        "type",
        "kind",
        "id",
        "project",
        "title",
        "location",
        "status",
        "last_sync",
        "last_sync_count",
        "every",
    ]
    return [line.split() for line in lines[1:]]


def test_list_storages_shows_every_storage_and_filters(alice, project, bucket, settings):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    imported = make_import(alice, project, bucket, title="Photos")
    run("sync_storage", "s3", imported.pk)
    exported = make_export(alice, project, bucket, title="Results")
    S3ExportStorage.objects.filter(pk=exported.pk).update(sync_interval_minutes=90)
    other = new_project(alice, "Other")
    stuck = make_import(alice, other, bucket, title="Stuck")
    stuck.info_set_queued()
    stuck.info_set_in_progress()
    old = (timezone.now() - timedelta(seconds=10 * settings.STORAGE_IN_PROGRESS_TIMER)).isoformat()
    S3ImportStorage.objects.filter(pk=stuck.pk).update(meta={**stuck.meta, "time_last_ping": old})

    rows = table(run("list_storages")[0])
    imported.refresh_from_db()
    assert ["s3", "import", str(imported.pk), str(project.pk), "Photos", f"s3://{name}/", "completed"] == rows[0][:7]
    assert rows[0][-2:] == ["1", "-"] and rows[0][7] == imported.last_sync.strftime("%Y-%m-%d")
    assert ["s3", "import", str(stuck.pk), str(other.pk), "Stuck", f"s3://{name}/", "failed", "-", "0", "-"] == rows[1]
    assert [
        "s3",
        "export",
        str(exported.pk),
        str(project.pk),
        "Results",
        f"s3://{name}/out",
        "initialized",
        "-",
        "-",
        "90min",
    ] == rows[2]
    # aligned: every row's location starts in the same column
    lines = run("list_storages")[0].splitlines()
    assert len({line.index("s3://") for line in lines[1:]}) == 1 and lines[0].index("location") == lines[1].index(
        "s3://"
    )

    assert [r[2] for r in table(run("list_storages", "--project", str(project.pk))[0])] == [
        str(imported.pk),
        str(exported.pk),
    ]
    assert [r[2] for r in table(run("list_storages", "--project", str(other.pk))[0])] == [str(stuck.pk)]
    assert [(r[1], r[2]) for r in table(run("list_storages", "--export")[0])] == [("export", str(exported.pk))]
    out, err = run("list_storages", "--project", "987654")
    assert out == "" and "No storages" in err


# --- admin ----------------------------------------------------------------------
@pytest.fixture
def admin_web():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def make_secret_import(alice, project, bucket, **fields):
    put(*bucket, "a.jpg", b"x")  # an import storage is only accepted with objects to import
    return make_import(alice, project, bucket, aws_access_key_id=SECRET_KEY_ID, aws_secret_access_key=SECRET, **fields)


def test_admin_registers_every_storage_model_of_the_registry(admin_web):
    from django.contrib import admin

    for export in (False, True):
        for model in all_storage_models(export):
            assert admin.site.is_registered(model)
            url = f"/admin/io_storages/{model._meta.model_name}/"
            assert admin_web.get(url).status_code == 200, url
            add_form = admin_web.get(url + "add/").content.decode()
            for field in model.secret_fields:
                assert f'type="password" name="{field}"' in add_form
    assert len(PROVIDERS) * 2 == len(all_storage_models()) + len(all_storage_models(export=True))


def test_admin_changelist_renders_without_secrets(admin_web, alice, project, bucket):
    storage = make_secret_import(alice, project, bucket, title="Photo bucket")
    html = admin_web.get("/admin/io_storages/s3importstorage/").content.decode()
    assert "Photo bucket" in html and f"/admin/io_storages/s3importstorage/{storage.pk}/change/" in html
    assert SECRET not in html and SECRET_KEY_ID not in html
    filtered = admin_web.get("/admin/io_storages/s3importstorage/?status__exact=initialized")
    assert filtered.status_code == 200 and "Photo bucket" in filtered.content.decode()
    assert (
        "Photo bucket" not in admin_web.get("/admin/io_storages/s3importstorage/?status__exact=failed").content.decode()
    )


def test_admin_edits_the_sync_interval_and_refuses_one_below_the_minimum(admin_web, alice, project, bucket, settings):
    settings.STORAGE_SYNC_MIN_INTERVAL_MINUTES = 5
    storage = make_secret_import(alice, project, bucket)
    url = f"/admin/io_storages/s3importstorage/{storage.pk}/change/"
    assert 'name="sync_interval_minutes"' in admin_web.get(url).content.decode()

    refused = admin_web.post(url, form_data(storage, sync_interval_minutes="1"))
    assert refused.status_code == 200 and "Sync interval must be between 5 and" in refused.content.decode()
    assert admin_web.post(url, form_data(storage, sync_interval_minutes="30")).status_code == 302
    storage.refresh_from_db()
    assert storage.sync_interval_minutes == 30
    assert "30.0" in admin_web.get("/admin/io_storages/s3importstorage/").content.decode()


def form_data(storage, **changes):
    """The change form's fields as a browser would post them, secrets left empty."""
    data = model_to_dict(storage)
    for name in storage.secret_fields:
        data[name] = ""
    data = {k: "" if v is None else v for k, v in data.items() if k not in ("meta", "id")}
    return {**data, **changes, "_save": "Save"}


def test_admin_change_form_hides_and_keeps_secrets(admin_web, alice, project, bucket):
    storage = make_secret_import(alice, project, bucket, title="Before")
    url = f"/admin/io_storages/s3importstorage/{storage.pk}/change/"
    page = admin_web.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html and SECRET_KEY_ID not in html
    assert 'type="password" name="aws_secret_access_key"' in html

    response = admin_web.post(url, form_data(storage, title="After"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    storage.refresh_from_db()
    assert storage.title == "After"
    assert storage.aws_secret_access_key == SECRET and storage.aws_access_key_id == SECRET_KEY_ID

    response = admin_web.post(url, form_data(storage, aws_secret_access_key="replaced-secret"))
    assert response.status_code == 302
    storage.refresh_from_db()
    assert storage.aws_secret_access_key == "replaced-secret" and storage.aws_access_key_id == SECRET_KEY_ID


def test_admin_can_remove_a_stored_secret(admin_web, alice, project, bucket):
    storage = make_secret_import(alice, project, bucket)
    url = f"/admin/io_storages/s3importstorage/{storage.pk}/change/"
    assert 'name="clear_aws_secret_access_key"' in admin_web.get(url).content.decode()

    response = admin_web.post(url, form_data(storage, clear_aws_secret_access_key="on"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    storage.refresh_from_db()
    assert storage.aws_secret_access_key is None and storage.aws_access_key_id == SECRET_KEY_ID
    add_page = admin_web.get("/admin/io_storages/s3importstorage/add/")
    assert add_page.status_code == 200 and "clear_" not in add_page.content.decode()


def test_admin_sync_now_action(admin_web, alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_secret_import(alice, project, bucket)
    response = admin_web.post(
        "/admin/io_storages/s3importstorage/",
        {"action": "sync_now", "_selected_action": [storage.pk]},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f"s3 storage #{storage.pk}" in html and "completed" in html and SECRET not in html
    storage.refresh_from_db()
    assert storage.status == "completed" and project.tasks.count() == 1


def test_admin_sync_now_does_not_start_a_second_sync(admin_web, alice, project, bucket):
    storage = make_secret_import(alice, project, bucket)
    storage.info_set_queued()
    storage.info_set_in_progress()
    response = admin_web.post(
        "/admin/io_storages/s3importstorage/", {"action": "sync_now", "_selected_action": [storage.pk]}, follow=True
    )
    assert "already in_progress" in response.content.decode()
    storage.refresh_from_db()
    assert storage.status == "in_progress"


def test_admin_link_pages_render(admin_web, alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_secret_import(alice, project, bucket)
    run("sync_storage", "s3", storage.pk)
    html = admin_web.get("/admin/io_storages/s3importstoragelink/").content.decode()
    assert "a.jpg" in html
    assert admin_web.get("/admin/io_storages/s3exportstoragelink/").status_code == 200

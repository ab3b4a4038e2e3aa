"""The storage console in a real browser (headless Chromium): log in, create a project,
connect an S3 storage on moto through the form, sync 2,000 objects while the page shows the
count growing, open a task whose image renders and whose video seeks through the proxy (206),
export, delete, and another organization's user seeing none of it."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import png, video
from tests.conftest import create_project
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_SECRET_KEY, s3_admin, s3_config

pytestmark = pytest.mark.django_db(transaction=True)

MEDIA_CONFIG = '<View><Image name="image" value="$image"/><Video name="video" value="$video"/></View>'


def put_many(endpoint, bucket, objects):
    client = s3_admin(endpoint)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]), objects.items()))


def api_storage(client, project, config, export=False):
    path = "/api/storages/export/s3" if export else "/api/storages/s3"
    response = client.post(path, {"project": project.pk, **config}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def insert_tasks(project, n):
    """`n` tasks {"text": "sentence number <i>"} in one INSERT ... SELECT (bulk_create of
    100,000 rows takes a minute on a busy machine; this takes a second)."""
    from django.db import connection

    from tasks.models import Task

    table = connection.ops.quote_name(Task._meta.db_table)
    columns = "project_id, data, meta, inner_id, created_at, updated_at, is_labeled, total_annotations, "
    columns += "cancelled_annotations, total_predictions"
    if connection.vendor == "postgresql":
        data, now = "jsonb_build_object('text', 'sentence number ' || i)", "now()"
        rows = f"SELECT %s, {data}, '{{}}'::jsonb, i, {now}, {now}, false, 0, 0, 0 FROM generate_series(1, %s) n(i)"
        sql, params = f"INSERT INTO {table} ({columns}) {rows}", [project.pk, n]
    else:  # SQLite: a recursive CTE counts (%% is a literal % beside the parameters)
        data, now = "json_object('text', 'sentence number ' || i)", "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"
        rows = f"SELECT %s, {data}, '{{}}', i, {now}, {now}, 0, 0, 0, 0 FROM n"
        numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)"
        sql, params = f"{numbers} INSERT INTO {table} ({columns}) {rows}", [n, project.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert project.tasks.count() == n


def fill_s3_form(browser, endpoint, bucket, **extra):
    fields = {
        "title": "Photos",
        "bucket": bucket,
        "s3_endpoint": endpoint,
        "aws_access_key_id": S3_ACCESS_KEY,
        "aws_secret_access_key": S3_SECRET_KEY,
        "region_name": "us-east-1",
        **extra,
    }
    for name, value in fields.items():
        browser.fill(f"#sf-{name}", value)


def test_log_in_create_a_project_and_log_out(browser, make_member):
    make_member("alice@example.com", "Org A")
    browser.open("/")  # not logged in: the login page, which remembers where to go
    browser.fill("#id_username", "alice@example.com")
    browser.fill("#id_password", "wrong")
    browser.find("button[type=submit]").click()
    assert "didn't match" in browser.find(".error").text
    browser.fill("#id_password", "pw")
    browser.find("#id_password").send_keys(Keys.ENTER)  # the keyboard is enough
    browser.text_in(".empty", "No project yet")
    browser.screenshot("projects-empty")

    browser.find("#new-project").click()
    browser.fill("#project-title", "ab")  # too short: the API's message next to the field
    browser.find("#project-form button[type=submit]").click()
    assert browser.text_in("#err-title", "3").text
    browser.fill("#project-title", "Street photos")
    browser.find("#project-form button[type=submit]").click()
    assert browser.text_in("#project-title", "Street photos")
    browser.text_in("#import-storages .empty", "No storage yet: connect a bucket")
    browser.text_in("#tasks .empty", "No task yet")
    browser.screenshot("project-empty")

    browser.open("/")
    browser.text_in(".project-list", "Street photos")
    browser.logout()
    browser.open("/")
    browser.find("#id_username")  # logged out: back to the login page


def test_connect_s3_through_the_form_preview_and_sync_2000_objects(
    browser, alice, s3_server, s3_bucket, background_jobs
):
    project = create_project(alice, "Street photos")
    put_many(
        s3_server,
        s3_bucket,
        {f"images/img-{i:05d}.png": png(48 + i % 5, 32, rgb=(40 + i % 200, 90, 200 - i % 150)) for i in range(2000)},
    )
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.find("#add-import").click()
    Select(browser.find("#storage-type")).select_by_value("s3")
    browser.find("#sf-bucket")

    # A wrong bucket: "Check connection" shows the server's message next to the bucket field.
    fill_s3_form(browser, s3_server, "no-such-bucket-here", prefix="images/")
    browser.find("#storage-check").click()
    message = browser.text_in("#sf-err-bucket", "no-such-bucket-here").text
    assert "Cannot find bucket" in message
    assert browser.find("#sf-bucket").get_attribute("aria-invalid") == "true"

    # The right one: connection OK, and the preview lists the first files a sync would import.
    browser.fill("#sf-bucket", s3_bucket)
    browser.find("#storage-check").click()
    browser.text_in("#storage-message", "Connection OK")
    browser.find("#storage-files").click()
    preview = browser.text_in("#storage-preview", "images/img-00000.png")
    assert "images/img-00009.png" in preview.text and "images/img-00010.png" not in preview.text
    browser.find("#sf-use_blob_urls").click()  # each image is a task
    if browser.find("#sf-presign").is_selected():
        browser.find("#sf-presign").click()  # files through our proxy, not presigned URLs
    browser.screenshot("storage-form")
    browser.find("#storage-save").click()
    card = browser.text_in("#import-storages .storage", "Photos")
    assert "Never synced" in card.text

    # Sync: the page follows the job without reloading until the count reaches 2,000.
    browser.js("window.__not_reloaded = true")
    card.find_element(By.CSS_SELECTOR, ".sync").click()
    seen = set()
    card = browser.wait_for_status("#import-storages .storage", "completed", seen=seen)
    assert card["facts"]["created"] == "2,000" and card["badge"] == "Completed"
    assert browser.js("return window.__not_reloaded") is True
    if background_jobs != "foreground":  # "sync" answered `queued`: the page showed the job running
        assert {status for status, _ in seen} & {"queued", "in_progress"}, seen
    assert {"elapsed", "rate", "existed", "last-sync"} <= set(card["facts"])
    print("counts the page showed while syncing:", sorted(seen, key=lambda s: (len(s[1] or ""), s[1] or "")))
    browser.text_in("#tasks-total", "2,000 tasks")

    # The tasks table pages through the API: 20 rows, thumbnails that really rendered.
    rows = browser.all("table.tasks tbody tr")
    assert len(rows) == 20
    thumb = browser.find("table.tasks img.thumb")
    browser.wait(lambda d: browser.js("return arguments[0].complete && arguments[0].naturalWidth", thumb) > 0)
    browser.screenshot("project-synced")
    browser.screenshot("project-phone", width=390, height=844)
    browser.text_in("#tasks-pager", "Page 1 of 100")
    browser.find("#tasks-pager button:last-child").click()
    browser.text_in("#tasks-pager", "Page 2 of 100")

    # Edit: secrets are never shown back; leaving them empty keeps them.
    browser.find("#import-storages .storage .edit").click()
    secret = browser.find("#sf-aws_secret_access_key")
    assert secret.get_attribute("value") == "" and "stored" in secret.get_attribute("placeholder")
    assert S3_SECRET_KEY not in browser.driver.page_source
    browser.fill("#sf-title", "Photos (renamed)")
    browser.find("#storage-check").click()
    browser.text_in("#storage-message", "Connection OK")
    browser.find("#storage-save").click()
    browser.text_in("#import-storages .storage h4", "Photos (renamed)")

    # A second sync finds every object already linked.
    browser.find("#import-storages .storage .sync").click()
    card = browser.wait(
        lambda d: (state := browser.storage_card("#import-storages .storage"))["facts"].get("existed") == "2,000"
        and state["status"] == "completed"
        and state,
        timeout=60,
    )
    assert card["facts"]["created"] == "0"


def test_a_task_shows_its_image_and_its_video_seeks_through_the_proxy(browser, alice, s3_server, s3_bucket):
    project = create_project(alice, "Media")
    project.label_config = MEDIA_CONFIG
    project.save()
    put_many(s3_server, s3_bucket, {"media/photo.png": png(320, 180, rgb=(30, 120, 200)), "media/clip.webm": video()})
    api_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="media/", presign=False, title="Media"))
    response = alice.post(
        f"/api/projects/{project.pk}/import",
        [{"image": f"s3://{s3_bucket}/media/photo.png", "video": f"s3://{s3_bucket}/media/clip.webm"}],
        format="json",
    )
    assert response.status_code == 201, response.content
    task = project.tasks.get()

    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.find(f"tr[data-task='{task.pk}'] a").click()
    image = browser.find("img.full[data-key=image]")
    browser.wait(lambda d: browser.js("return arguments[0].complete && arguments[0].naturalWidth", image) == 320)
    player = browser.find("video.full[data-key=video]")
    browser.js(
        "const v = arguments[0]; window.__seeked = false;"
        "v.addEventListener('seeked', () => { window.__seeked = v.currentTime; });"
        "const go = () => { v.currentTime = 2.5; };"
        "if (v.readyState >= 1) go(); else v.addEventListener('loadedmetadata', go, {once: true});"
        "v.load && v.readyState === 0 && v.load();",
        player,
    )
    seeked = browser.wait(lambda d: browser.js("return window.__seeked"), message="the video never seeked")
    assert abs(seeked - 2.5) < 0.5
    assert browser.js("return arguments[0].duration", player) == pytest.approx(4, abs=0.2)
    browser.screenshot("task")
    media = [r for r in browser.network_responses() if f"/tasks/{task.pk}/resolve" in r["url"]]
    assert any(r["status"] == 206 for r in media), media  # Range requests answered by our proxy
    assert any(r["status"] == 200 and r["headers"].get("content-type", "").startswith("image/") for r in media), media


def test_text_and_html_task_data_cannot_run_script(browser, alice):
    project = create_project(alice, "Pages")
    project.label_config = '<View><HyperText name="html" value="$html"/><Text name="text" value="$text"/></View>'
    project.save()
    payload = '<img src=x onerror="window.__owned=1"><script>window.__owned=2</script><b>bold</b>'
    alice.post(f"/api/projects/{project.pk}/import", [{"html": payload, "text": payload}], format="json")
    task = project.tasks.get()
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/tasks/{task.pk}/")
    text = browser.find("p.text[data-key=text]")
    assert text.text == payload  # escaped: shown as written
    frame = browser.find("iframe.html-frame[data-key=html]")
    assert frame.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
    browser.driver.switch_to.frame(frame)
    assert browser.find("b").text == "bold"
    browser.driver.switch_to.default_content()
    assert browser.js("return window.__owned") is None
    browser.open(f"/projects/{project.pk}/")
    assert browser.text_in("table.tasks .snippet", "<script>").text.startswith("<img src=x")
    assert browser.js("return window.__owned") is None


def test_export_storage_all_and_only_new_annotations(browser, alice, s3_server, background_jobs):
    project = create_project(alice, "Labels")
    target = s3_admin(s3_server)
    bucket = f"export-{project.pk}-{alice.user.pk}"
    target.create_bucket(Bucket=bucket)
    alice.post(
        f"/api/projects/{project.pk}/import",
        [{"image": f"https://example.com/{i}.png"} for i in range(3)],
        format="json",
    )
    for task in project.tasks.all()[:2]:
        alice.post(f"/api/tasks/{task.pk}/annotations/", {"result": []}, format="json")

    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.text_in("#export-storages .empty", "No export storage yet")
    browser.find("#add-export").click()
    assert not browser.find("#storage-check").get_attribute("hidden")
    assert browser.all("#storage-files")[0].is_displayed() is False  # no preview for a target
    fill_s3_form(browser, s3_server, bucket, title="Backup", prefix="labels")
    browser.find("#storage-save").click()
    browser.text_in("#export-storages .storage", "Backup").find_element(By.CSS_SELECTOR, ".sync").click()
    card = browser.wait_for_status("#export-storages .storage", "completed", timeout=60)
    assert card["facts"]["created"] == "2"
    keys = [o["Key"] for o in target.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert len(keys) == 2 and all(k.startswith("labels/") for k in keys)

    # "Only new annotations": the one made since is written, the two others are not again.
    third = project.tasks.order_by("id")[2]
    alice.post(f"/api/tasks/{third.pk}/annotations/", {"result": []}, format="json")
    browser.js("window.__not_reloaded = true")
    browser.find("#export-storages .storage .sync-new").click()
    browser.wait(lambda d: len(target.list_objects_v2(Bucket=bucket).get("Contents", [])) == 3)
    card = browser.wait_for_status("#export-storages .storage", "completed", timeout=60)
    assert browser.js("return window.__not_reloaded") is True
    browser.screenshot("project-export")


def test_sync_errors_are_listed_per_key(browser, alice, s3_server, s3_bucket, background_jobs):
    project = create_project(alice, "Mixed")
    put_many(
        s3_server,
        s3_bucket,
        {"tasks/good.json": b'{"image": "https://example.com/a.png"}', "tasks/broken.json": b'{"image": '},
    )
    api_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="tasks/", title="Task files"))
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.find("#import-storages .storage .sync").click()
    card = browser.wait_for_status("#import-storages .storage", "completed_with_errors", timeout=60)
    assert card["badge"] == "Completed with errors"
    assert card["keys"] == [f"s3://{s3_bucket}/tasks/broken.json"] and len(card["errors"]) == 1
    browser.text_in("#tasks-total", "1 task ·")
    browser.screenshot("storage-errors")


def test_deleting_a_storage_asks_first_and_keeps_the_tasks(browser, alice, s3_server, s3_bucket):
    project = create_project(alice, "Keepers")
    put_many(s3_server, s3_bucket, {f"p/{i}.png": png() for i in range(3)})
    storage = api_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="p/", use_blob_urls=True, title="Old"))
    assert alice.post(f"/api/storages/s3/{storage['id']}/sync").status_code == 200
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.text_in("#tasks-total", "3 tasks")
    browser.find("#import-storages .storage .delete").click()
    assert "stay in the project" in browser.find("#confirm-text").text
    browser.find("#confirm-dialog .cancel-confirm").click()  # cancel: nothing happens
    browser.find("#import-storages .storage .delete").click()
    browser.find("#confirm-ok").click()
    browser.text_in("#import-storages .empty", "No storage yet")
    assert alice.get(f"/api/storages/s3/{storage['id']}").status_code == 404
    browser.open(f"/projects/{project.pk}/")
    browser.text_in("#tasks-total", "3 tasks")


def test_another_organizations_user_sees_none_of_it(browser, alice, bob, s3_server, s3_bucket):
    project = create_project(alice, "Secret project")
    put_many(s3_server, s3_bucket, {"x/a.png": png()})
    api_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="x/", use_blob_urls=True, title="Hidden"))
    alice.post(f"/api/projects/{project.pk}/import", [{"image": "https://example.com/a.png"}], format="json")
    task = project.tasks.get()
    create_project(bob, "Bob's own")

    browser.login("bob@example.com")
    listing = browser.text_in(".project-list", "Bob's own")
    assert "Secret project" not in listing.text
    browser.open(f"/projects/{project.pk}/")
    assert "not found" in browser.find("#not-found").text.lower()
    assert "Hidden" not in browser.driver.page_source
    browser.open(f"/projects/{project.pk}/tasks/{task.pk}/")
    assert "not found" in browser.find("#not-found").text.lower()
    assert "example.com/a.png" not in browser.driver.page_source


def test_the_tasks_table_pages_through_100000_tasks(browser, alice):
    """The page loads one page of tasks from the API, never all of them: the first page, the
    last one and a page typed into the address all show 20 rows of the right tasks."""
    project = create_project(alice, "Big project")
    insert_tasks(project, 100_000)
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.text_in("#tasks-total", "100,000 tasks")
    browser.text_in("#tasks-pager", "Page 1 of 5,000")
    assert len(browser.all("table.tasks tbody tr")) == 20
    assert browser.find("table.tasks tbody tr:first-child .snippet").text == "sentence number 1"
    browser.open(f"/projects/{project.pk}/?page=5000")
    browser.text_in("#tasks-pager", "Page 5,000 of 5,000")
    assert browser.find("table.tasks tbody tr:last-child .snippet").text == "sentence number 100000"
    assert browser.find("#tasks-pager button:last-child").get_attribute("disabled") is not None
    browser.find("#tasks-pager button:first-child").click()  # "Previous"
    browser.text_in("#tasks-pager", "Page 4,999 of 5,000")
    assert browser.find("table.tasks tbody tr:first-child .snippet").text == "sentence number 99961"


def test_the_storage_form_works_from_the_keyboard(browser, alice, s3_server, s3_bucket):
    from selenium.webdriver.common.action_chains import ActionChains

    project = create_project(alice, "Keys")
    put_many(s3_server, s3_bucket, {"k/a.png": png()})
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.find("#import-storages .empty")
    button = browser.find("#add-import")
    browser.js("arguments[0].focus()", button)
    ActionChains(browser.driver).send_keys(Keys.ENTER).perform()
    browser.find("#sf-bucket")
    assert browser.js("return document.getElementById('storage-dialog').open") is True
    active = browser.js("return document.activeElement.id")
    assert active == "storage-type"  # focus moved into the dialog
    ActionChains(browser.driver).send_keys(Keys.ESCAPE).perform()
    browser.wait(lambda d: browser.js("return document.getElementById('storage-dialog').open") is False)

    browser.find("#add-import").send_keys(Keys.ENTER)
    fill_s3_form(browser, s3_server, s3_bucket, prefix="k/", title="Typed")
    browser.find("#sf-s3_endpoint").send_keys(Keys.ENTER)  # Enter in a field submits the form
    browser.text_in("#import-storages .storage h4", "Typed")


def test_a_redis_storage_through_the_same_form(browser, alice, redis_server, background_jobs):
    """Another type, another layout (host, port, db, password): the form follows the API's."""
    import uuid

    from tests.fixtures.redis_server import REDIS_DB, REDIS_PASSWORD, redis_admin

    project = create_project(alice, "From Redis")
    location = f"t{uuid.uuid4().hex}"
    for i in range(3):
        redis_admin(redis_server.port).set(f"{location}/task-{i}.json", f'{{"text": "line {i}"}}')
    browser.login("alice@example.com")
    browser.open(f"/projects/{project.pk}/")
    browser.find("#add-import").click()
    Select(browser.find("#storage-type")).select_by_value("redis")
    assert browser.find("#sf-db").get_attribute("value") == "1"  # the model's default, from the layout
    assert browser.all("#sf-bucket") == []
    for name, value in {"title": "Queue", "path": location, "host": "127.0.0.1", "password": "wrong"}.items():
        browser.fill(f"#sf-{name}", value)
    browser.fill("#sf-port", str(redis_server.port))
    browser.fill("#sf-db", str(REDIS_DB))
    browser.find("#storage-check").click()
    assert "check password" in browser.text_in("#sf-err-password", "refused the login").text  # next to its field
    browser.fill("#sf-password", REDIS_PASSWORD)
    browser.find("#storage-files").click()
    browser.text_in("#storage-preview", f"{location}/task-2.json")
    browser.find("#storage-save").click()
    browser.text_in("#import-storages .storage h4", "Queue").click()
    browser.find("#import-storages .storage .sync").click()
    card = browser.wait_for_status("#import-storages .storage", "completed", timeout=60)
    assert card["facts"]["created"] == "3"
    browser.text_in("#tasks-total", "3 tasks")
    assert {el.text for el in browser.all("table.tasks .snippet")} == {"line 0", "line 1", "line 2"}

"""Storage listings with and without `?project=`, across two organizations, against moto S3:
`GET /api/storages` and `/api/storages/export` without a project list the storages of every
project the user may see; the per-type lists keep needing `?project=`, as the spec and Label
Studio do."""

import pytest

from tests.conftest import create_project
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, put

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]


def field_errors(response, status=400):
    """The messages by field of an error answer, whichever envelope the API uses: DRF's
    `{"field": [...]}` or Label Studio's `{"validation_errors": {"field": [...]}, ...}`."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    return body["validation_errors"] if isinstance(body.get("validation_errors"), dict) else body


def listed(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return [(item["type"], item["id"], item["project"]) for item in response.json()]


@pytest.fixture
def two_organizations(alice, bob, make_member, s3_server, s3_bucket):
    """Alice's organization: two projects, three import storages and one export storage; Bob's
    organization: one project with one of each. Carol is a second member of Alice's."""
    put(s3_server, s3_bucket, "a.jpg", b"x")
    config = s3_config(s3_server, s3_bucket, use_blob_urls=True)
    first, second = create_project(alice, "First"), create_project(alice, "Second")
    bobs = create_project(bob, "Bob's")
    made = {
        "alice_import": [
            create_storage(alice, first, config),
            create_storage(alice, second, config),
            create_storage(alice, second, config),
        ],
        "alice_export": [create_storage(alice, first, config, export=True)],
        "bob_import": [create_storage(bob, bobs, config)],
        "bob_export": [create_storage(bob, bobs, config, export=True)],
    }
    made = {name: [("s3", s["id"], s["project"]) for s in storages] for name, storages in made.items()}
    made["projects"] = (first, second, bobs)
    made["carol"] = make_member("carol@example.com", "Org A")
    return made


@pytest.mark.parametrize("slash", ["", "/"])
def test_without_project_the_lists_hold_every_storage_the_user_may_see(alice, bob, two_organizations, slash):
    made = two_organizations
    assert listed(alice, f"/api/storages{slash}") == made["alice_import"]
    assert listed(alice, f"/api/storages/export{slash}") == made["alice_export"]
    assert listed(made["carol"], f"/api/storages{slash}") == made["alice_import"]  # same organization
    assert listed(bob, f"/api/storages{slash}") == made["bob_import"]
    assert listed(bob, f"/api/storages/export{slash}") == made["bob_export"]


def test_a_user_without_organization_lists_nothing(two_organizations, make_member):
    from core.models import Membership

    loner = make_member("loner@example.com", "Org C")
    Membership.objects.filter(user=loner.user).delete()
    assert listed(loner, "/api/storages") == [] and listed(loner, "/api/storages/export") == []


def test_with_project_the_lists_are_unchanged(alice, bob, two_organizations):
    first, second, bobs = two_organizations["projects"]
    assert listed(alice, f"/api/storages?project={second.id}") == two_organizations["alice_import"][1:]
    assert listed(alice, f"/api/storages/export?project={first.id}") == two_organizations["alice_export"]
    assert listed(alice, f"/api/storages/export?project={second.id}") == []
    assert listed(alice, f"/api/storages/s3?project={second.id}") == two_organizations["alice_import"][1:]
    for path in ("/api/storages", "/api/storages/export", "/api/storages/s3", "/api/storages/export/s3"):
        assert alice.get(f"{path}?project={bobs.id}").status_code == 404  # another organization's
        assert bob.get(f"{path}?project={first.id}").status_code == 404
        assert alice.get(f"{path}?project=999999999").status_code == 404
        assert alice.get(f"{path}?project=abc").status_code == 404  # names no project, as in LS
        assert "project" in field_errors(alice.get(f"{path}?project="))


@pytest.mark.parametrize("path", ["/api/storages/s3", "/api/storages/export/s3", "/api/storages/redis/"])
def test_the_lists_of_one_type_still_need_project(alice, two_organizations, path):
    """The spec's `GET TYPE/?project=<id>` (400 if `project` missing), as Label Studio answers."""
    assert "project" in field_errors(alice.get(path))


def test_listing_without_project_runs_the_health_check(alice, two_organizations):
    from io_storages.s3.models import S3ImportStorage

    _, storage_id, _ = two_organizations["alice_import"][0]
    S3ImportStorage.objects.filter(pk=storage_id).update(status="queued", meta={})  # queued, never started
    (item,) = [s for s in alice.get("/api/storages").json() if s["id"] == storage_id]
    assert item["status"] == "failed" and "never started" in item["traceback"]

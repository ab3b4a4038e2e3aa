"""Projects API: CRUD, validation, pagination and organization isolation."""

import pytest

from projects.models import Project
from tests.api_errors import validation_errors

pytestmark = pytest.mark.django_db


def test_create_project_answers_201_with_label_studio_fields(alice):
    response = alice.post("/api/projects/", {"title": "Cats", "label_config": "<View/>"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Cats"
    assert body["organization"] == alice.organization.id
    assert body["created_by"]["email"] == "alice@example.com"
    assert body["maximum_annotations"] == 1
    counts = ("task_number", "num_tasks_with_annotations", "total_annotations_number", "total_predictions_number")
    assert {name: body[name] for name in counts} == dict.fromkeys(counts, 0)  # integers, never null


@pytest.mark.parametrize("title", ["ab", "x" * 51])
def test_project_title_must_have_3_to_50_characters(alice, title):
    response = alice.post("/api/projects/", {"title": title}, format="json")
    assert "title" in validation_errors(response)


def test_project_list_is_paginated(alice):
    for i in range(5):
        alice.post("/api/projects/", {"title": f"Project {i}"}, format="json")
    page = alice.get("/api/projects/?page=1&page_size=2").json()
    assert page["count"] == 5
    assert len(page["results"]) == 2
    assert page["next"] and page["previous"] is None
    last = alice.get("/api/projects/?page=3&page_size=2").json()
    assert len(last["results"]) == 1 and last["next"] is None


def test_update_and_delete_project(alice, project):
    response = alice.patch(f"/api/projects/{project.id}/", {"description": "new"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "new"
    # trailing slash is optional, as in Label Studio
    assert alice.get(f"/api/projects/{project.id}").status_code == 200
    assert alice.delete(f"/api/projects/{project.id}/").status_code == 204
    assert not Project.objects.filter(pk=project.id).exists()


def test_other_organization_cannot_see_list_change_or_import(alice, bob, project):
    assert bob.get("/api/projects/").json()["count"] == 0
    assert bob.get(f"/api/projects/{project.id}/").status_code == 404
    assert bob.patch(f"/api/projects/{project.id}/", {"title": "mine"}, format="json").status_code == 404
    assert bob.delete(f"/api/projects/{project.id}/").status_code == 404
    assert bob.post(f"/api/projects/{project.id}/import", [{"image": "x"}], format="json").status_code == 404
    assert bob.get(f"/api/tasks/?project={project.id}").status_code == 404
    assert bob.get(f"/api/projects/{project.id}/next").status_code == 404
    project.refresh_from_db()
    assert project.title == "Images" and project.tasks.count() == 0


def test_members_of_the_same_organization_share_projects(make_member, alice, project):
    colleague = make_member("carol@example.com", "Org A")
    assert colleague.get(f"/api/projects/{project.id}/").status_code == 200


def test_label_config_names_the_blob_data_key(alice):
    assert Project(label_config='<View><Image name="i" value="$image"/></View>').data_key == "image"
    assert Project(label_config="<View><Text name='t' value='$text'/></View>").data_key == "text"
    assert Project(label_config="<View></View>").data_key == "$undefined$"

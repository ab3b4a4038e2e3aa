"""The console's defences without a browser: its Content-Security-Policy, CSRF on the login,
the logout and the API's session authentication, and another organization's pages (the
browser side, escaping and the sandbox, is tests/browser/test_console.py)."""

import pytest
from django.test import Client

from tests.conftest import create_project

pytestmark = pytest.mark.django_db


def test_pages_are_shells_with_a_strict_content_security_policy(alice):
    client = Client()
    client.force_login(alice.user)
    project = create_project(alice, "Shell")
    for path in ["/", f"/projects/{project.pk}/", f"/projects/{project.pk}/tasks/1/", "/login/"]:
        response = client.get(path, follow=path == "/login/")
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
        html = response.content.decode()
        assert "<script>" not in html and "onclick=" not in html  # only module files, no inline script
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert f'data-projectid="{project.pk}"' in page and 'name="csrf-token"' in page
    assert "Shell" not in page  # the data comes from the API, not from the shell


def test_login_and_logout_use_the_existing_users_with_csrf():
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="carol@example.com", email="carol@example.com", password="pw")
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/login/", {"username": "carol@example.com", "password": "pw"}).status_code == 403
    page = strict.get("/login/")
    token = page.cookies["csrftoken"].value
    response = strict.post("/login/", {"username": "carol@example.com", "password": "pw", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/"
    assert strict.get("/").status_code == 200
    assert strict.get("/logout/").status_code == 405  # logging out is a POST, with the token
    response = strict.post("/logout/", {"csrfmiddlewaretoken": strict.cookies["csrftoken"].value})
    assert response.status_code == 302 and strict.get("/").status_code == 302


def test_the_api_takes_the_session_only_with_the_csrf_header(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.user)
    body = {"title": "Through the session", "label_config": "<View></View>"}
    assert client.get("/api/projects/").status_code == 200
    refused = client.post("/api/projects/", body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    token = client.get("/").cookies["csrftoken"].value
    created = client.post("/api/projects/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert created.status_code == 201


def test_another_organizations_pages_show_nothing_of_it(alice, bob):
    """The shell renders for any id (it holds no data); what the page shows comes from the API,
    which answers bob 404 for alice's project."""
    project = create_project(alice, "Alice only")
    client = Client()
    client.force_login(bob.user)
    page = client.get(f"/projects/{project.pk}/")
    assert page.status_code == 200 and b"Alice only" not in page.content
    assert client.get(f"/api/projects/{project.pk}/").status_code == 404
    assert client.get(f"/api/storages/?project={project.pk}").status_code == 404

"""The console's pages without a browser: who may open them, that they do not shadow the
API's routes, and that their static files ship (defences: tests/test_security_console.py)."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = ["/", "/projects/1/", "/projects/1/tasks/1/"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anonymous_users_to_the_login_page(path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"] == f"/login/?next={path}"


def test_the_console_does_not_shadow_the_api_or_the_file_routes(alice):
    client = Client()
    client.force_login(alice.user)
    assert client.get("/api/projects").status_code == 200
    assert client.get("/tasks/1/resolve/").status_code == 400  # the resolve view: "pass fileuri"


def test_the_console_ships_its_static_files():
    """collectstatic (serve.sh, the Dockerfile) picks them up; whitenoise serves them."""
    from django.contrib.staticfiles import finders

    for name in ["console.css", "api.js", "preview.js", "projects.js", "project.js", "storages.js", "task.js"]:
        assert finders.find(f"console/{name}"), name

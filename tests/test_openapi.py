"""The OpenAPI schema (/api/schema/) describes what the API really takes: generated without a
warning, with every storage type's body and the query parameters the views require."""

import pytest
import yaml
from django.core.management import call_command

from io_storages import registry

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker):
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--fail-on-warn", "--file", str(path))  # raises on any warning
    return yaml.safe_load(path.read_text())


def parameters(schema, path, method):
    return {p["name"]: p for p in schema["paths"][path][method].get("parameters", [])}


def test_storage_bodies_are_one_of_every_provider_and_secrets_are_write_only(schema):
    components = schema["components"]["schemas"]
    for kind, path in (("Import", "/api/storages/{storage_type}/"), ("Export", "/api/storages/export/{storage_type}/")):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{kind}Storage"}
        members = {ref["$ref"].rsplit("/", 1)[1] for ref in components[f"{kind}Storage"]["oneOf"]}
        assert members == {
            f"{registry.storage_model(name, export=kind == 'Export').__name__}" for name in registry.PROVIDERS
        }
        assert sorted(parameters(schema, path, "post")["storage_type"]["schema"]["enum"]) == sorted(registry.PROVIDERS)
    assert components["S3ImportStorage"]["properties"]["aws_secret_access_key"]["writeOnly"] is True


@pytest.mark.parametrize(
    "path, method, name",
    [
        ("/api/tasks/", "get", "project"),
        ("/api/storages/{storage_type}/", "get", "project"),
        ("/tasks/{id}/resolve/", "get", "fileuri"),
        ("/projects/{id}/presign/", "get", "fileuri"),
        ("/data/local-files/", "get", "d"),
    ],
)
def test_query_parameters_the_views_require_are_required(schema, path, method, name):
    assert parameters(schema, path, method)[name]["required"] is True


@pytest.mark.parametrize("path", ["/api/storages/", "/api/storages/export/"])
def test_all_storages_take_an_optional_project(schema, path):
    assert parameters(schema, path, "get")["project"].get("required", False) is False


def test_task_creation_and_the_project_task_list_are_documented(schema):
    project_tasks = schema["paths"]["/api/projects/{id}/tasks/"]
    assert {"page", "page_size"} <= set(parameters(schema, "/api/projects/{id}/tasks/", "get"))
    assert project_tasks["get"]["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert "201" in project_tasks["post"]["responses"]
    create = schema["paths"]["/api/tasks/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body]["required"]) == {"project", "data"}
    assert "201" in create["responses"]


def test_file_endpoints_document_their_answers(schema):
    responses = schema["paths"]["/tasks/{id}/resolve/"]["get"]["responses"]
    assert {"200", "206", "303", "304", "400", "404", "416", "424"} <= set(responses)
    assert {"Range", "If-None-Match"} <= set(parameters(schema, "/tasks/{id}/resolve/", "get"))


def test_errors_are_described_as_label_studio_s_envelope(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"id", "status_code", "version", "detail", "exc_info", "validation_errors"}
    assert set(error["required"]) == {"id", "status_code", "version", "detail", "exc_info"}
    assert error["properties"]["id"]["format"] == "uuid" and error["properties"]["exc_info"]["nullable"] is True
    assert error["properties"]["validation_errors"]["type"] == "object"
    responses = schema["paths"]["/tasks/{id}/resolve/"]["get"]["responses"]
    for status in ("400", "404", "424"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_webhooks_are_documented_with_a_write_only_secret(schema):
    assert {"/api/webhooks/", "/api/webhooks/{id}/", "/api/webhooks/{id}/test/", "/api/webhooks/info/"} <= set(
        schema["paths"]
    )
    webhook = schema["components"]["schemas"]["Webhook"]["properties"]
    assert webhook["secret"]["writeOnly"] is True and webhook["secret_set"]["readOnly"] is True
    assert parameters(schema, "/api/webhooks/", "get")["project"].get("required", False) is False

"""Label Studio's own storage API cases, run over HTTP against this service.

The cases are the tavern files that ship inside the `label-studio==1.23.2` wheel
(label_studio/tests/*.tavern.yml). The wheel is downloaded once with pip into
.cache/label-studio/ and read as a zip (tests/label_studio/wheel.py): nothing of Label Studio
is committed. Selected are the cases that call a storage endpoint (`/api/storages...`, which
covers every type, the export types, the all-types lists and the types lists) or
`/data/local-files/`: 53 cases. Label Studio 1.23.2 skips two of them; one of those runs here
(SKIPPED says why the other does not).

Our service runs as pytest-django's `live_server` (a real HTTP server in a thread of this
process) on the suite's real servers, configured as Label Studio's test run is: the cases
create storages with a bucket and nothing else, so the operator's credentials come from the
environment and STORAGE_SERVER_CREDENTIALS_ENABLED lets keyless storages use them
(docs/security.md):
  * S3: moto; AWS_ENDPOINT_URL and AWS_* = "testing", as Label Studio's conftest sets them (an
    endpoint from AWS_ENDPOINT_URL is trusted by the SSRF policy, so it stays on);
  * GCS: gcp-storage-emulator through STORAGE_EMULATOR_HOST, and a service-account key file
    of our own (a local RSA key) as GOOGLE_APPLICATION_CREDENTIALS, which signs URLs;
  * Azure: Azurite through AZURE_BLOB_ENDPOINT, its development account as
    AZURE_BLOB_ACCOUNT_NAME / _KEY (Label Studio's conftest sets them to "testing");
  * Redis: the suite's redis-server, trusted through SSRF_TRUSTED_ENDPOINTS;
  * local files: the suite's LOCAL_FILES_DOCUMENT_ROOT, with the case user's organization
    directory made as an operator would (tests/label_studio/localfiles.py).
Syncs must end within their request: jobs run in-process or with RQ_ASYNC=false.

What is adapted, in memory and the same way for every case (tests/label_studio/adapt.py), as
the harness that recorded Label Studio's answers did:
  * Label Studio's session sign-up stages are dropped (every request carries a token
    instead); the variables their `save: $ext` computes are still saved;
  * the buckets and containers of Label Studio's conftest and its GCS/Azure mocks are emptied
    and seeded before each case that uses them (tests/label_studio/seed.py, which also explains the SSE/KMS
    buckets);
  * a presigned-URL expectation written for AWS (https://<bucket>.s3.amazonaws.com...) also
    accepts the path-style URL of the moto endpoint; one written for the GCS mock, which
    "signs" as https://storage.googleapis.com/<bucket>/<key> without a signature, wants that
    object's URL with a V4 signature, on Google or on the emulator;
  * an Azure storage body with `bucket` and no `container` sends it as `container`. Azure
    storages have no `bucket` field, in Label Studio either: it ignores the field and creates
    a storage without a container (nothing is checked on save, its mock accepts anything),
    which this service refuses (docs/decisions.md, "Creating without a bucket"). The case
    means the container;
  * a Redis storage body without `host` gets the host, port and password of the suite's
    redis-server. Label Studio connects such a storage to localhost:6379 (as this service
    does, 127.0.0.1:6379), and in its run every Redis connection is one FakeRedis
    (tests/utils.py redis_client_mock); here the real server is the suite's own, never the
    machine's job queue;
  * local-files paths move into the organization's directory (tests/label_studio/localfiles.py):
    here a storage may only use `<LOCAL_FILES_DOCUMENT_ROOT>/<organization id>/`;
  * `files:` paths are read from the wheel; `usefixtures` names are Label Studio-internal
    fixtures (feature flags, boto3 mocks, local-files setup) whose effect the configuration
    above provides (KNOWN_FIXTURES).

Where this service answers differently on purpose, the case's expectation is changed for that
case only, with the reason and the decision it follows (DIFFERENCES); everything else it
checks is still checked. A case that fails here while Label Studio passes it is marked
xfail(strict=True) with the difference (see XFAIL); once fixed it XPASSes, which fails the
run: then drop its mark. A case stops at its first failing stage, as with tavern;
LS_CASES_KEEP_GOING=1 runs every stage that can run and reports all the differences.
"""

from __future__ import annotations

import json
import os
import platform
import re

import pytest
import requests

from tests.label_studio import seed
from tests.label_studio.adapt import Servers, adapt
from tests.label_studio.localfiles import EXT, LS_ROOTS, SAMPLE, LocalFiles
from tests.label_studio.tavern import RegexSentinel, StageFailed, run_case
from tests.label_studio.wheel import SHARED_STAGES, TESTS, wheel

#: case id -> why it fails here (None: it passes). Ids are <file stem>::<test_name>.
XFAIL = {
    "data_manager/api_tasks::tasks-storage-filename-s3": None,
    "data_manager/api_tasks::tasks-storage-filename-local": None,
    "io_storages::Test import storage when failed status is processed": None,
    "io_storages::test_import_from_s3_storage": None,
    "io_storages::test_import_from_s3_storage_recursive_scan": None,
    "io_storages::test_import_from_s3_storage_recursive_scan_straigtaway": None,
    "io_storages::test_import_from_gcs_storage": None,
    "io_storages::test_invalidate_gcs_storage": None,
    "io_storages::test_import_from_gcs_storage_json": None,
    "io_storages::resolve_gs_links_by_connected_gcs_with_nested_dict_and_array": None,
    "io_storages::get_import_export_storage_types": None,
    "io_storages::test_export_s3_storage": None,
    "io_storages::test_export_s3_storage_with_sse": None,
    "io_storages::test_export_s3_storage_with_kms": None,
    "io_storages::test_export_gcs_storage": None,
    "io_storages::test_empty_storage_list": None,
    "io_storages::test_validate_s3_connection": None,
    "io_storages::test_import_from_azure_storage": None,
    "io_storages::test_export_azure_storage": None,
    "io_storages::test_import_jsons_from_s3": None,
    "io_storages::test_resolving_embedded_links": None,
    "io_storages::test_import_jsons_from_s3_and_resolve_hypertext": None,
    "io_storages::test_import_json_with_unexisted_s3_links": None,
    "io_storages::test_connection_to_import_redis_storage": None,
    "io_storages_presign_endpoints::test_project_presign_endpoint_s3": None,
    "io_storages_presign_endpoints::test_task_presign_endpoint_s3": None,
    "io_storages_presign_endpoints::test_project_presign_endpoint_gcp": None,
    "io_storages_presign_endpoints::test_task_presign_endpoint_gcp": None,
    "io_storages_presign_proxy::test_import_from_s3_storage": None,
    "io_storages_presign_proxy::test_import_from_s3_storage_recursive_scan": None,
    "io_storages_presign_proxy::test_import_from_s3_storage_recursive_scan_straigtaway": None,
    "io_storages_presign_proxy::test_import_from_gcs_storage": None,
    "io_storages_presign_proxy::test_invalidate_gcs_storage": None,
    "io_storages_presign_proxy::test_import_from_gcs_storage_json": None,
    "io_storages_presign_proxy::resolve_gs_links_by_connected_gcs_with_nested_dict_and_array": None,
    "io_storages_presign_proxy::get_import_export_storage_types": None,
    "io_storages_presign_proxy::test_export_s3_storage": None,
    "io_storages_presign_proxy::test_export_gcs_storage": None,
    "io_storages_presign_proxy::test_empty_storage_list": None,
    "io_storages_presign_proxy::test_validate_s3_connection": None,
    "io_storages_presign_proxy::test_import_from_azure_storage": None,
    "io_storages_presign_proxy::test_export_azure_storage": None,
    "io_storages_presign_proxy::test_import_jsons_from_s3": None,
    "io_storages_presign_proxy::test_resolving_embedded_links": None,
    "io_storages_presign_proxy::test_import_jsons_from_s3_and_resolve_hypertext": None,
    "io_storages_presign_proxy::test_import_jsons_from_s3_and_resolve_partially_encoded": None,
    "io_storages_presign_proxy::test_import_json_with_unexisted_s3_links": None,
    "io_storages_presign_proxy::test_connection_to_import_redis_storage": None,
    "local_storage::test_import_from_localstorage": None,
    "local_storage::test_local_files_not_enabled": None,
    "local_storage::test_local_files_without_storage_not_available": None,
    "local_storage::test_local_files_without_import": None,
    "local_storage::test_local_files_without_import_document_root": None,
    "local_storage::test_import_from_localstorage_document_root": None,
}

#: the cases Label Studio marks `skip` -> None: they run here anyway (they pass), or why not
SKIPPED = {
    "io_storages::test_import_from_gcs_storage": (
        "its link check names gs://test-gs-bucket/test-gs-bucket/abc, a key that neither the bucket nor "
        "Label Studio's mock has (the bucket name twice); its twin io_storages_presign_proxy::"
        "test_import_from_gcs_storage checks gs://test-gs-bucket/abc and passes"
    ),
    "io_storages::test_import_from_gcs_storage_json": None,
}

#: Label Studio fixtures named in the cases' `usefixtures`: what the configuration here replaces
KNOWN_FIXTURES = {
    "django_live_url",  # the variable {django_live_url}: our live server
    "fflag_feat_back_lsdv_3958_server_side_encryption_for_target_storage_short_on",  # SSE is always on here
    "mock_s3_resource_aes",  # boto3 mocks: replaced by seed.sse_problems() after the case
    "mock_s3_resource_kms",
    "local_files_storage",  # LOCAL_FILES_SERVING_ENABLED and the sample files: LocalFiles.provide()
    *LS_ROOTS,  # Label Studio's document root: what LocalFiles translates `?d=` paths from
}
#: the only `skipif` condition of the selected cases, and its value here
SKIPIF = {'"Windows" in platform.system()': "Windows" in platform.system()}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, RegexSentinel):
        yield value.pattern


SELECTED = re.compile(r"/api/storages\b|/data/local-files\b")


def is_selected(case: dict) -> bool:
    """A storage endpoint or /data/local-files/ appears in the case."""
    return bool(SELECTED.search("\n".join(_strings(case))))


# --- where this service answers differently on purpose (docs/decisions.md) -------------------
def _stages(stages, method, url_end, has=None):
    """The stages sending `method` to a URL ending in `url_end` (whose response checks `has`)."""
    found = [
        stage
        for stage in stages
        if str(stage["request"].get("method", "GET")).upper() == method
        and str(stage["request"]["url"]).endswith(url_end)
        and (has is None or has in (stage.get("response") or {}).get("json", {}))
    ]
    assert found, f"no {method} ...{url_end} stage: the case changed, review its DIFFERENCES entry"
    return found


def _validate_with_id_is_complete(stages):
    for stage in _stages(stages, "POST", "/api/storages/export/gcs/validate"):
        stage["response"]["status_code"] = 200


def _export_storage_is_initialized(stages):
    for stage in _stages(stages, "PATCH", "/api/storages/export/azure/{storage_pk}", has="status"):
        stage["response"]["json"]["status"] = "initialized"


def _local_storage_filename(stages):
    # the case's storage is the file's directory: the key is the file name
    for stage in _stages(stages, "GET", "/api/tasks?fields=all&view={view.id}"):
        for task in stage["response"]["json"]["tasks"]:
            task["storage_filename"] = os.path.basename(task["storage_filename"])


def _serving_disabled_is_404(stages):
    for stage in _stages(stages, "GET", "/data/local-files/?d={os_independent_path}"):
        stage["response"]["status_code"] = 404


_VALIDATE_WITH_ID = (
    "`validate` with the `id` of a stored storage takes the stored fields it does not give, its project "
    "included; Label Studio's answers 400 because the body has no `project`",
    _validate_with_id_is_complete,
)
_EXPORT_INITIALIZED = (
    "creating an export storage does not start an export here, so before its first sync it is "
    "`initialized`, where Label Studio exported on create and says `completed`",
    _export_storage_is_initialized,
)

#: case id -> (why, what changes in its stages)
DIFFERENCES = {
    "io_storages::test_export_gcs_storage": _VALIDATE_WITH_ID,
    "io_storages_presign_proxy::test_export_gcs_storage": _VALIDATE_WITH_ID,
    "io_storages::test_export_azure_storage": _EXPORT_INITIALIZED,
    "data_manager/api_tasks::tasks-storage-filename-local": (
        "a local file's `storage_filename` is its key, its path under the storage's directory (as an "
        "S3 task's is its key in the bucket), where Label Studio's is the file's absolute path",
        _local_storage_filename,
    ),
    "local_storage::test_local_files_not_enabled": (
        "/data/local-files/ is a 404 while serving is disabled (Label Studio: 403): the endpoint does not "
        "exist then",
        _serving_disabled_is_404,
    ),
}


@pytest.fixture(scope="module")
def ls_cases():
    """Case id -> case (a tavern document) for every selected case of the wheel, and the
    shared stages."""
    source = wheel()
    cases = {}
    for name in source.case_files():
        if name == SHARED_STAGES or not SELECTED.search(source.read(name).decode("utf-8")):
            continue  # (a file that never names such an endpoint has no case to select)
        stem = name[len(TESTS) :].split(".tavern")[0]
        for case in source.documents(name):
            if is_selected(case):
                cases[f"{stem}::{case['test_name']}"] = case
    return cases, source.shared_stages()


def test_the_selection_is_label_studios_53_storage_cases(ls_cases):
    cases, _ = ls_cases
    assert sorted(cases) == sorted(XFAIL)
    skipped = {case_id for case_id, case in cases.items() if {"skip"} in [set(m) for m in case.get("marks") or []]}
    assert skipped == set(SKIPPED)
    assert set(DIFFERENCES) <= set(cases)


@pytest.fixture
def service(
    live_server,
    s3_server,
    gcs_server,
    azure_server,
    redis_server,
    localfiles_document_root,
    make_member,
    settings,
    monkeypatch,
    tmp_path,
):
    """(base URL, member): our service on the suite's servers, set up as Label Studio's own
    test run is (see the module doc)."""
    from core import jobs
    from io_storages.s3 import client as s3_client
    from tests.fixtures.azure import ACCOUNT_KEY, ACCOUNT_NAME
    from tests.fixtures.gcs import fake_service_account

    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(fake_service_account()))
    for name, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",  # presigned URLs carry X-Amz-Security-Token=testing
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "SSRF_TRUSTED_ENDPOINTS": f"redis://{redis_server.host}:{redis_server.port}",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # boto3 keeps the default chain's credentials once found, in the session all S3 clients
    # share: another test's environment keys must not be the ones used here.
    monkeypatch.setattr(s3_client._BOTOCORE_SESSION, "_credentials", None)
    settings.STORAGE_SERVER_CREDENTIALS_ENABLED = True
    settings.AZURE_BLOB_ACCOUNT_NAME, settings.AZURE_BLOB_ACCOUNT_KEY = ACCOUNT_NAME, ACCOUNT_KEY
    settings.LOCAL_FILES_SERVING_ENABLED = False  # Label Studio's default; local_files_storage turns it on
    settings.HOSTNAME = ""  # resolve links are relative, as in Label Studio's run
    if settings.REDIS_URL and settings.RQ_ASYNC:  # a queued sync would not be done when its request ends
        monkeypatch.setattr(jobs, "redis_available", lambda: False)
    member = make_member("test_suites_user@heartex.com", "Label Studio cases")
    return live_server.url, member


def case_params():
    return [
        pytest.param(case_id, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [], id=case_id)
        for case_id, reason in XFAIL.items()
    ]


def _fixtures(case_id: str, case: dict) -> set:
    """The Label Studio fixtures the case uses; skips it where Label Studio would."""
    used = set()
    for mark in case.get("marks") or []:
        if isinstance(mark, dict) and set(mark) == {"usefixtures"}:
            used |= set(mark["usefixtures"])
        elif isinstance(mark, dict) and set(mark) == {"skip"}:
            assert case_id in SKIPPED, f"{case_id} is skipped by Label Studio: say in SKIPPED whether it runs here"
            if SKIPPED[case_id]:
                pytest.skip(f"skipped by Label Studio ({mark['skip']}) and here: {SKIPPED[case_id]}")
        elif isinstance(mark, dict) and set(mark) == {"skipif"} and mark["skipif"] in SKIPIF:
            if SKIPIF[mark["skipif"]]:
                pytest.skip(f"skipped by Label Studio here: {mark['skipif']}")
        else:
            raise AssertionError(f"{case_id}: mark {mark!r} is not supported here")
    unknown = used - KNOWN_FIXTURES
    assert not unknown, f"{case_id} needs fixtures this module does not provide: {unknown}"
    return used


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case_id", case_params())
def test_label_studio_case(case_id, ls_cases, service, s3_server, gcs_server, azure_server, redis_server, settings):
    from tests.fixtures.redis_server import REDIS_PASSWORD

    cases, shared = ls_cases
    case = cases[case_id]
    fixtures = _fixtures(case_id, case)
    base_url, member = service
    source = wheel()
    (ls_root,) = [LS_ROOTS[name] for name in fixtures & set(LS_ROOTS)] or ["/"]
    local = LocalFiles(settings.LOCAL_FILES_DOCUMENT_ROOT, member.organization.id, ls_root)
    if "local_files_storage" in fixtures:
        settings.LOCAL_FILES_SERVING_ENABLED = True
        local.provide(source.sample(SAMPLE)[1])
    text = "\n".join(_strings(case))
    seed.seed(s3_server)
    if "gcs" in text or "gs://" in text:  # (Azurite and the GCS emulator are slow to seed)
        seed.seed_gcs(gcs_server)
    if "azure" in text:
        seed.seed_azure(azure_server)
    servers = Servers(
        moto=s3_server,
        gcs=gcs_server,
        redis={"host": redis_server.host, "port": redis_server.port, "password": REDIS_PASSWORD},
        localfiles=local,
    )
    adapted = adapt(case, shared, servers)
    DIFFERENCES.get(case_id, (None, lambda stages: None))[1](adapted.stages)
    with requests.Session() as session:
        session.headers["Authorization"] = f"Token {member.token}"
        try:
            failures = run_case(
                case,
                adapted.stages,
                variables={"django_live_url": base_url, **adapted.variables},
                session=session,
                upload=source.sample,
                keep_going=os.environ.get("LS_CASES_KEEP_GOING") == "1",
                ext=EXT,
                prepare=local.prepare,
            )
        except StageFailed as e:
            failures = [e]
    problems = [str(f) for f in failures]
    if any(bucket in text for bucket in seed.SSE_EXPECT):
        problems += [f"written without Label Studio's SSE arguments: {p}" for p in seed.sse_problems(s3_server)]
    if problems:
        pytest.fail(f"{case_id}:\n" + "\n".join(problems), pytrace=False)


# --- the runner itself: tavern's semantics, so that a case cannot pass by accident ----------
def test_matching_follows_tavern():
    from tests.label_studio.tavern import Mismatch, check, load_all

    (expected,) = load_all("""
        id: !anyint
        name: !anystr
        data: !anything
        url: !re_match "/tasks/\\\\d+/resolve"
        items: [{a: 1}, {a: 3}]
        """)
    actual = {"id": 5, "name": "x", "data": None, "url": "/tasks/7/resolve/?x", "items": [{"a": 1}, {"a": 2}, {"a": 3}]}
    check(expected, {**actual, "extra": 1}, strict=False)  # extra keys, and list items in order, are fine
    bad = [
        {**actual, "id": "5"},  # !anyint is an int, not a string
        {**actual, "id": True},  # ... nor a bool
        {**actual, "url": "x/tasks/7/resolve"},  # re_match anchors at the start
        {**actual, "items": [{"a": 3}, {"a": 1}]},  # expected items must appear in that order
        {k: v for k, v in actual.items() if k != "data"},  # every expected key must be there
    ]
    for value in bad:
        with pytest.raises(Mismatch):
            check(expected, value, strict=False)
    with pytest.raises(Mismatch):  # strict: no extra keys, lists item by item
        check(expected, {**actual, "extra": 1}, strict=True)
    check([{"name": "s3"}], [{"name": "s3"}], strict=True)
    with pytest.raises(Mismatch):
        check([{"name": "s3"}], [{"name": "s3"}, {"name": "gcs"}], strict=True)
    check(1, 1.0, strict=True)  # tavern compares scalars with ==


def test_formatting_and_saving_follow_tavern():
    from tests.label_studio.tavern import StageFailed, format_value, load_all, run_case

    (spec,) = load_all('{a: !int "{pk}", b: "{view.id}/{{literal}}", c: !raw "{not a variable}"}')
    assert format_value(spec, {"pk": "12", "view": {"id": 3}}) == {"a": 12, "b": "3/{literal}", "c": "{not a variable}"}

    class Response:
        def __init__(self, status, body):
            self.status_code, self._body, self.headers, self.text = status, body, {}, ""

        def json(self):
            return self._body

    class Session:
        def __init__(self, *answers):
            self.answers, self.sent = list(answers), []

        def request(self, method, url, **kwargs):
            self.sent.append((method, url, kwargs))
            return self.answers.pop(0)

    stages = [
        {
            "name": "create",
            "request": {"url": "{base}/api/x", "method": "POST", "json": {"n": 1}},
            "response": {"status_code": 201, "save": {"json": {"pk": "id", "whole": "@"}}},
        },
        {"name": "unchecked", "request": {"url": "{base}/api/x/{pk}"}},
        {"name": "get", "request": {"url": "{base}/api/x/{whole.id}"}, "response": {"json": {"id": 7}}},
    ]
    session = Session(Response(201, {"id": 7}), Response(500, None), Response(200, {"id": 7}))
    assert run_case({}, stages, variables={"base": "http://h"}, session=session, upload=None) == []
    assert [s[1] for s in session.sent] == ["http://h/api/x", "http://h/api/x/7", "http://h/api/x/7"]
    assert session.sent[0][2]["allow_redirects"] is False  # tavern does not follow redirects

    session = Session(Response(400, {"detail": "no"}))
    with pytest.raises(StageFailed, match="status 400, expected 201"):
        run_case({}, stages[:1], variables={"base": "http://h"}, session=session, upload=None)


def test_anchors_and_ext_follow_tavern():
    from tests.label_studio.tavern import load_all, run_case

    first, second = load_all("stages: [&create {name: create, request: {url: '{base}/x'}}]\n---\nstages: [*create]\n")
    assert second["stages"] == first["stages"]  # tavern keeps anchors from one document to the next

    class Response:
        status_code, headers, text = 200, {}, ""

        def json(self):
            return {}

    class Session:
        sent = []

        def request(self, method, url, **kwargs):
            self.sent.append(url)
            return Response()

    stages = [
        {
            "request": {"url": "{base}/a"},
            "response": {"save": {"$ext": {"function": "mod:f", "extra_kwargs": {"n": 2}}}},
        },
        {"request": {"url": "{base}/b/{doubled}"}},
    ]
    session = Session()
    ext = {"mod:f": lambda response, n: {"doubled": n * 2}}
    prepare = lambda request: {**request, "url": request["url"] + "?p"}  # noqa: E731
    run_case({}, stages, variables={"base": "http://h"}, session=session, upload=None, ext=ext, prepare=prepare)
    assert session.sent == ["http://h/a?p", "http://h/b/4?p"]

"""Label Studio's own storage API cases, run over HTTP against this service.

The cases are the tavern files that ship inside the `label-studio==1.23.2` wheel
(label_studio/tests/*.tavern.yml). The wheel is downloaded once with pip into
.cache/label-studio/ and read as a zip (tests/label_studio/wheel.py): nothing of Label Studio
is committed. Selected are the cases that call an S3 import or export storage endpoint, and
the two storage type listings: 25 cases, every one of which Label Studio 1.23.2 passes.

Our service runs as pytest-django's `live_server` (a real HTTP server in a thread of this
process) on the suite's moto server, configured as Label Studio's test run is: the cases
create storages with a bucket and nothing else, so the operator's S3 endpoint and keys come
from the environment (AWS_ENDPOINT_URL, AWS_* = "testing", as Label Studio's conftest sets
them) and STORAGE_SERVER_CREDENTIALS_ENABLED lets keyless storages use them (docs/security.md;
an endpoint from AWS_ENDPOINT_URL is trusted by the SSRF policy, so it stays on). Syncs must
end within their request: jobs run in-process or with RQ_ASYNC=false.

What is adapted, in memory and the same way for every case (as the harness that recorded
Label Studio's answers did):
  * Label Studio's session sign-up stages are dropped; every request carries a token instead;
  * the buckets of Label Studio's conftest are emptied and seeded before each case
    (tests/label_studio/seed.py, which also explains the SSE/KMS buckets);
  * a presigned-URL expectation written for AWS (https://<bucket>.s3.amazonaws.com...) also
    accepts the path-style URL of the moto endpoint;
  * `files:` paths are read from the wheel; `usefixtures` names are Label Studio-internal
    fixtures (feature flags, boto3 mocks) whose effect the configuration above provides.

A case that fails here while Label Studio passes it is marked xfail(strict=True) with the
difference (see XFAIL); once fixed it XPASSes, which fails the run: then drop its mark.
A case stops at its first failing stage, as with tavern; LS_CASES_KEEP_GOING=1 runs every
stage that can run and reports all the differences.
"""

from __future__ import annotations

import copy
import os
import re

import pytest
import requests

from tests.label_studio import seed
from tests.label_studio.tavern import RegexSentinel, StageFailed, resolve_stages, run_case
from tests.label_studio.wheel import SHARED_STAGES, TESTS, wheel

# Why cases fail here (measured against this tree; Label Studio 1.23.2's answers are quoted).
# None of these is in the areas being reworked at the time of writing (error envelope,
# /api/projects/<id>/tasks and POST /api/tasks/, storage lists without ?project=, relative
# resolve links, `failed` for a sync that imported nothing): the cases that needed those pass.

#: case id -> why it fails here (None: it passes). Ids are <file stem>::<test_name>.
XFAIL = {
    "data_manager/api_tasks::tasks-storage-filename-s3": None,
    "io_storages::Test import storage when failed status is processed": None,
    "io_storages::test_import_from_s3_storage": None,
    "io_storages::test_import_from_s3_storage_recursive_scan": None,
    "io_storages::test_import_from_s3_storage_recursive_scan_straigtaway": None,
    "io_storages::get_import_export_storage_types": None,
    "io_storages::test_export_s3_storage": None,
    "io_storages::test_export_s3_storage_with_sse": None,
    "io_storages::test_export_s3_storage_with_kms": None,
    "io_storages::test_validate_s3_connection": None,
    "io_storages::test_import_jsons_from_s3": None,
    "io_storages::test_import_jsons_from_s3_and_resolve_hypertext": None,
    "io_storages::test_import_json_with_unexisted_s3_links": None,
    "io_storages_presign_endpoints::test_project_presign_endpoint_s3": None,
    "io_storages_presign_endpoints::test_task_presign_endpoint_s3": None,
    "io_storages_presign_proxy::test_import_from_s3_storage": None,
    "io_storages_presign_proxy::test_import_from_s3_storage_recursive_scan": None,
    "io_storages_presign_proxy::test_import_from_s3_storage_recursive_scan_straigtaway": None,
    "io_storages_presign_proxy::get_import_export_storage_types": None,
    "io_storages_presign_proxy::test_export_s3_storage": None,
    "io_storages_presign_proxy::test_validate_s3_connection": None,
    "io_storages_presign_proxy::test_import_jsons_from_s3": None,
    "io_storages_presign_proxy::test_import_jsons_from_s3_and_resolve_hypertext": None,
    "io_storages_presign_proxy::test_import_jsons_from_s3_and_resolve_partially_encoded": None,
    "io_storages_presign_proxy::test_import_json_with_unexisted_s3_links": None,
}

#: Label Studio fixtures named in the cases' `usefixtures`: what the configuration here replaces
KNOWN_FIXTURES = {
    "django_live_url",  # the variable {django_live_url}: our live server
    "fflag_feat_back_lsdv_3958_server_side_encryption_for_target_storage_short_on",  # SSE is always on here
    "mock_s3_resource_aes",  # boto3 mocks: replaced by seed.sse_problems() after the case
    "mock_s3_resource_kms",
}
LOGIN_STAGES = {"signup", "login", "logout"}


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


SELECTED = re.compile(r"/api/storages/(export/)?(s3|types)\b")


def is_selected(case: dict) -> bool:
    """An S3 import/export storage endpoint or a storage types listing appears in the case."""
    return bool(SELECTED.search("\n".join(_strings(case))))


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


def test_the_selection_is_label_studios_25_s3_and_types_cases(ls_cases):
    cases, _ = ls_cases
    assert sorted(cases) == sorted(XFAIL)


@pytest.fixture
def service(live_server, s3_server, make_member, settings, monkeypatch):
    """(base URL, token): our service on the suite's moto server, set up as Label Studio's
    own test run is (see the module doc)."""
    from core import jobs
    from io_storages.s3 import client as s3_client

    for name, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",  # presigned URLs carry X-Amz-Security-Token=testing
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "SSRF_TRUSTED_ENDPOINTS"):
        monkeypatch.delenv(name, raising=False)
    # boto3 keeps the default chain's credentials once found, in the session all S3 clients
    # share: another test's environment keys must not be the ones used here.
    monkeypatch.setattr(s3_client._BOTOCORE_SESSION, "_credentials", None)
    settings.STORAGE_SERVER_CREDENTIALS_ENABLED = True
    settings.HOSTNAME = ""  # resolve links are relative, as in Label Studio's run
    if settings.REDIS_URL and settings.RQ_ASYNC:  # a queued sync would not be done when its request ends
        monkeypatch.setattr(jobs, "redis_available", lambda: False)
    member = make_member("test_suites_user@heartex.com", "Label Studio cases")
    return live_server.url, member.token


def adapt(case: dict, shared: dict, moto: str):
    """The case's stages, resolved and adapted (see the module doc)."""
    stages = []
    for stage in case["stages"]:
        if stage.get("type") == "ref" and stage.get("id") in LOGIN_STAGES:
            continue
        if re.search(r"/user/(signup|login)\b", str((stage.get("request") or {}).get("url", ""))):
            continue
        stages.append(stage)
    stages = copy.deepcopy(resolve_stages(stages, shared))
    for stage in stages:
        headers = (stage.get("response") or {}).get("headers") or {}
        location = headers.get("location")
        if isinstance(location, RegexSentinel):
            aws = re.match(r"https://([a-z0-9.-]+)\.s3\.amazonaws\.com(.*)$", location.pattern)
            if aws:
                bucket, rest = aws.groups()
                pattern = f"(?:https://{re.escape(bucket)}\\.s3\\.amazonaws\\.com|{re.escape(moto)}/{re.escape(bucket)}/){rest}"
                headers["location"] = RegexSentinel(location.tag, location.types, pattern, location.how)
    return stages


def case_params():
    return [
        pytest.param(case_id, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [], id=case_id)
        for case_id, reason in XFAIL.items()
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case_id", case_params())
def test_label_studio_case(case_id, ls_cases, service, s3_server):
    cases, shared = ls_cases
    case = cases[case_id]
    for mark in case.get("marks") or []:
        if isinstance(mark, dict) and set(mark) == {"usefixtures"}:
            unknown = set(mark["usefixtures"]) - KNOWN_FIXTURES
            assert not unknown, f"{case_id} needs fixtures this module does not provide: {unknown}"
        elif isinstance(mark, dict) and set(mark) == {"skip"}:
            pytest.skip(f"skipped by Label Studio: {mark['skip']}")
        else:
            raise AssertionError(f"{case_id}: mark {mark!r} is not supported here")
    base_url, token = service
    seed.seed(s3_server)
    source = wheel()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Token {token}"
        try:
            failures = run_case(
                case,
                adapt(case, shared, s3_server),
                variables={"django_live_url": base_url},
                session=session,
                upload=source.sample,
                keep_going=os.environ.get("LS_CASES_KEEP_GOING") == "1",
            )
        except StageFailed as e:
            failures = [e]
    problems = [str(f) for f in failures]
    if any(bucket in "\n".join(_strings(case)) for bucket in seed.SSE_EXPECT):
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

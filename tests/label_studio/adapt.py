"""What is changed in a Label Studio case before it runs here: the same, in memory, for every
case (tests/test_label_studio_cases.py lists the reasons).

`Servers` says where the suite's real servers are; `adapt()` gives the stages to run and the
variables they start with.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from tests.label_studio.localfiles import EXT, LocalFiles
from tests.label_studio.tavern import RegexSentinel, call_ext, resolve_stages

LOGIN_STAGES = {"signup", "login", "logout"}
_LOGIN_URL = re.compile(r"/user/(signup|login)\b")
_AWS_URL = re.compile(r"https://([a-z0-9.-]+)\.s3\.amazonaws\.com(.*)$")
_GCS_MOCK_URL = re.compile(r"https://storage\.googleapis\.com/([^/?]+)/([^?]+)$")  # gcs_client_mock's "signed" URL


def _storage_url(kind: str) -> re.Pattern:
    return re.compile(rf"/api/storages/(export/)?{kind}(/validate)?/?$")


_AZURE_STORAGE = _storage_url("azure")
_REDIS_STORAGE = _storage_url("redis")


@dataclass(frozen=True)
class Servers:
    moto: str  # http://127.0.0.1:PORT
    gcs: str
    redis: Dict[str, Any]  # host, port, password of the suite's redis-server
    localfiles: Optional[LocalFiles] = None


@dataclass
class Adapted:
    stages: List[dict]
    variables: Dict[str, Any] = field(default_factory=dict)


def _body(stage: dict) -> Optional[dict]:
    request = stage.get("request") or {}
    for name in ("json", "data"):
        if isinstance(request.get(name), dict):
            return request[name]
    return None


def _is_login(stage: dict) -> bool:
    if stage.get("type") == "ref" and stage.get("id") in LOGIN_STAGES:
        return True
    return stage.get("id") in LOGIN_STAGES or bool(_LOGIN_URL.search(str((stage.get("request") or {}).get("url", ""))))


def _location(pattern: RegexSentinel, servers: Servers) -> RegexSentinel:
    aws = _AWS_URL.match(pattern.pattern)
    if not aws:
        return pattern
    bucket, rest = aws.groups()
    host = f"(?:https://{re.escape(bucket)}\\.s3\\.amazonaws\\.com|{re.escape(servers.moto)}/{re.escape(bucket)}/)"
    return RegexSentinel(pattern.tag, pattern.types, host + rest, pattern.how)


def _gcs_location(url: str, servers: Servers):
    """The mock's unsigned URL -> that object's URL signed on Google or on the emulator."""
    mock = _GCS_MOCK_URL.match(url)
    if not mock:
        return url
    bucket, key = (re.escape(part) for part in mock.groups())
    hosts = f"(?:https://storage\\.googleapis\\.com|{re.escape(servers.gcs)})"
    signed = f"{hosts}/{bucket}/{key}\\?.*X-Goog-Signature=[0-9a-f]+.*"
    return RegexSentinel("!re_fullmatch", (str,), signed, "fullmatch")


def _expected_local(value, local: LocalFiles):
    if isinstance(value, dict):
        return {key: _expected_local(item, local) for key, item in value.items()}
    if isinstance(value, list):
        return [_expected_local(item, local) for item in value]
    if isinstance(value, RegexSentinel) and r"\?d=" in value.pattern:
        return RegexSentinel(value.tag, value.types, local.expected_pattern(value.pattern), value.how)
    return value


def adapt(case: dict, shared: dict, servers: Servers) -> Adapted:
    """The case's stages, resolved and adapted (see tests/test_label_studio_cases.py)."""
    adapted = Adapted([])
    for stage in resolve_stages(case["stages"], shared):
        if _is_login(stage):
            # Its `save: $ext` still runs: the variables it saves are the case's, not the login's.
            ext = ((stage.get("response") or {}).get("save") or {}).get("$ext")
            if ext:
                adapted.variables.update(call_ext(EXT, ext, None))
            continue
        adapted.stages.append(copy.deepcopy(stage))
    for stage in adapted.stages:
        request, response = stage.get("request") or {}, stage.get("response") or {}
        url, body = str(request.get("url", "")), _body(stage)
        headers = response.get("headers") or {}
        if isinstance(headers.get("location"), RegexSentinel):
            headers["location"] = _location(headers["location"], servers)
        elif isinstance(headers.get("location"), str):
            headers["location"] = _gcs_location(headers["location"], servers)
        if body is not None and _AZURE_STORAGE.search(url) and "bucket" in body and "container" not in body:
            body["container"] = body.pop("bucket")
        if body is not None and _REDIS_STORAGE.search(url) and not body.get("host"):
            body.update({k: v for k, v in servers.redis.items() if k not in body})
        if servers.localfiles is not None and "json" in response:
            response["json"] = _expected_local(response["json"], servers.localfiles)
    return adapted

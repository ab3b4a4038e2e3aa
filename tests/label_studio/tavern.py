"""The part of tavern (3.x) that Label Studio's storage cases use, written again, small.

tavern 3.7.1 imports `_pytest.python_api`, which pytest 9 no longer has, so it cannot run in
this suite. What the cases need is re-implemented here with tavern's documented semantics
(checked against tavern 3.7.1's source):

* YAML: anchors stay defined for the documents after the one that sets them (tavern's
  loader keeps them, so one case can reuse a stage of an earlier case: `- *create_storage`).
* YAML tags: `!anything`, `!anystr`, `!anyint`, `!anyfloat`, `!anynumber`, `!anybool`,
  `!anylist`, `!anydict` (exact type), `!re_match` / `!re_search` / `!re_fullmatch`, and the
  conversions `!int`, `!float`, `!bool`, `!raw` applied after formatting.
* Formatting: every string of a request and of an expected response goes through
  `str.format` with the saved variables; dotted access (`{view.id}`) reads dict keys.
* Stages: `type: ref` stages come from the shared stages; a stage without `response` is sent
  and not checked; requests never follow redirects; one `requests.Session` per case.
* Responses: `status_code` (default 200, or a list); `json` and `headers` compared like
  tavern's `check_keys_match_recursive`: expected keys must all be there (with `strict`, no
  others), values equal or matched by a sentinel; lists with strict off are matched in order
  as a subsequence, with strict on item by item with equal lengths. Header names are compared
  case-insensitively. Strictness: test-level `strict: true` turns every block on, `false`
  every block off; unset, `json` is on and `headers` off. `save: json:` are JMESPath queries;
  `save: $ext:` calls a function (given to `run_case` by its tavern name, e.g.
  `tests.utils:os_independent_path`) with the response and `extra_kwargs`, and saves the dict
  it returns.
"""

from __future__ import annotations

import dataclasses
import re
import string
from typing import Any, Callable, Dict, List, Optional

import jmespath
import yaml


# --- YAML ---------------------------------------------------------------------------------
class _Anything:
    def __repr__(self):
        return "!anything"


ANYTHING = _Anything()


@dataclasses.dataclass(frozen=True)
class TypeSentinel:
    tag: str
    types: tuple

    def __repr__(self):
        return self.tag

    def accepts(self, value) -> bool:
        return type(value) in self.types  # exact type, as tavern: True is no !anyint


@dataclasses.dataclass(frozen=True)
class RegexSentinel(TypeSentinel):
    pattern: str = ""
    how: str = "match"

    def __repr__(self):
        return f"{self.tag} {self.pattern!r}"

    def accepts(self, value) -> bool:
        return isinstance(value, str) and getattr(re.compile(self.pattern), self.how)(value) is not None


@dataclasses.dataclass(frozen=True)
class Convert:
    """A value converted after formatting (`!int "{storage_pk}"`)."""

    tag: str
    value: str
    to: Callable[[str], Any]


def _strtobool(value: str) -> bool:
    lowered = str(value).lower()
    if lowered in ("y", "yes", "t", "true", "on", "1"):
        return True
    if lowered in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError(f"invalid truth value {value!r}")


_TYPES = {
    "!anystr": (str,),
    "!anyint": (int,),
    "!anyfloat": (float,),
    "!anynumber": (int, float),
    "!anybool": (bool,),
    "!anylist": (list,),
    "!anydict": (dict,),
}
_REGEXES = {"!re_match": "match", "!re_search": "search", "!re_fullmatch": "fullmatch"}
_CONVERSIONS = {
    "!int": int,
    "!float": float,
    "!bool": _strtobool,
    "!raw": lambda s: str(s).replace("{", "{{").replace("}", "}}"),
}


class Loader(yaml.SafeLoader):
    def compose_document(self):
        # yaml's Composer forgets the anchors at the end of each document; tavern's does not.
        self.get_event()  # DOCUMENT-START
        node = self.compose_node(None, None)
        self.get_event()  # DOCUMENT-END
        return node


def _add_tags():
    Loader.add_constructor("!anything", lambda loader, node: ANYTHING)
    for tag, types in _TYPES.items():
        Loader.add_constructor(tag, lambda loader, node, tag=tag, types=types: TypeSentinel(tag, types))
    for tag, how in _REGEXES.items():
        Loader.add_constructor(
            tag, lambda loader, node, tag=tag, how=how: RegexSentinel(tag, (str,), loader.construct_scalar(node), how)
        )
    for tag, to in _CONVERSIONS.items():

        def convert(loader, node, tag=tag, to=to):
            value = loader.construct_scalar(node)
            try:  # already a valid value (`!int "2"`, any `!raw`): converted at once, as tavern does
                return to(value)
            except ValueError:
                return Convert(tag, value, to)

        Loader.add_constructor(tag, convert)


@dataclasses.dataclass(frozen=True)
class Unsupported:
    """A tag of tavern's that the selected cases do not use (`!include`, `!approx`...): loading
    works, running a stage that holds one fails."""

    tag: str
    value: Any


def _unsupported(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_mapping(node)
    return Unsupported("!" + suffix, value)


_add_tags()
Loader.add_multi_constructor("!", _unsupported)


def load_all(text: str) -> List[Any]:
    return list(yaml.load_all(text, Loader=Loader))


# --- formatting -----------------------------------------------------------------------------
class _Vars(dict):
    """Variables for str.format: `{a.b}` reads key b of dict a (tavern uses python-box)."""

    def __getattr__(self, name):
        try:
            return _wrap(self[name])
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return _wrap(dict.__getitem__(self, name))


def _wrap(value):
    return _Vars(value) if isinstance(value, dict) and not isinstance(value, _Vars) else value


class MissingVariable(Exception):
    pass


def format_value(value, variables: dict):
    if isinstance(value, dict):
        return {key: format_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [format_value(item, variables) for item in value]
    if isinstance(value, str):
        try:
            return string.Formatter().vformat(value, (), _Vars(variables))
        except (KeyError, AttributeError) as e:
            raise MissingVariable(f"{value!r}: no variable {e.args[0]!r} (saved so far: {sorted(variables)})") from None
    if isinstance(value, Convert):
        return value.to(format_value(value.value, variables))
    if isinstance(value, Unsupported):
        raise ValueError(f"tavern's {value.tag} is not supported by this runner")
    return value


# --- matching -------------------------------------------------------------------------------
class Mismatch(AssertionError):
    pass


def _where(path) -> str:
    return "".join(f"[{p!r}]" for p in path) or "(body)"


def check(expected, actual, strict: bool, path=()) -> None:
    """Raise Mismatch unless `actual` satisfies `expected` (tavern's rules, see the module doc)."""
    if expected is ANYTHING:
        return
    if isinstance(expected, TypeSentinel):
        if not expected.accepts(actual):
            raise Mismatch(f"{_where(path)}: expected {expected!r}, got {actual!r}")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{_where(path)}: expected an object {expected!r}, got {actual!r}")
        missing = [key for key in expected if key not in actual]
        if missing:
            raise Mismatch(f"{_where(path)}: keys missing from the response: {missing} (got {sorted(actual)})")
        extra = [key for key in actual if key not in expected]
        if strict and extra:
            raise Mismatch(f"{_where(path)}: extra keys in the response (strict): {extra}")
        for key, value in expected.items():
            check(value, actual[key], strict, path + (key,))
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            raise Mismatch(f"{_where(path)}: expected a list {expected!r}, got {actual!r}")
        if strict:
            if len(expected) != len(actual):
                raise Mismatch(f"{_where(path)}: expected {len(expected)} items, got {len(actual)}: {actual!r}")
            for i, (e, a) in enumerate(zip(expected, actual)):
                check(e, a, strict, path + (i,))
            return
        remaining = iter(actual)  # each expected item: the next actual item that matches it
        missing = []
        for e in expected:
            for a in remaining:
                try:
                    check(e, a, strict, path)
                    break
                except Mismatch:
                    continue
            else:
                missing.append(e)
        if missing:
            raise Mismatch(f"{_where(path)}: list items not in the response (in order): {missing!r}; got {actual!r}")
        return
    if expected != actual:  # tavern compares scalars with ==, nothing more (1 == 1.0 == True)
        raise Mismatch(f"{_where(path)}: expected {expected!r}, got {actual!r}")


@dataclasses.dataclass(frozen=True)
class Strictness:
    json: bool = True
    headers: bool = False

    @classmethod
    def of(cls, setting) -> "Strictness":
        """tavern's `strict`: a bool for every block, or options like "json:off"."""
        if setting is None:
            return cls()
        if isinstance(setting, bool):
            return cls(json=setting, headers=setting)
        options = [setting] if isinstance(setting, str) else list(setting)
        values = dataclasses.asdict(cls())
        for option in options:
            section, _, switch = option.partition(":")
            if section not in values or switch not in ("", "on", "off"):
                raise ValueError(f"strict option {option!r} is not supported here")
            values[section] = switch != "off"
        return cls(**values)


# --- running a case ------------------------------------------------------------------------
@dataclasses.dataclass
class Exchange:
    stage: str
    method: str
    url: str
    status: int
    body: Any
    checked: bool

    def __str__(self):
        text = self.body if isinstance(self.body, str) else repr(self.body)
        if len(text) > 1500:
            text = text[:1500] + "..."
        return f"{self.method} {self.url} -> {self.status} {text}"


class StageFailed(AssertionError):
    def __init__(self, index: int, stage: str, exchange: Optional[Exchange], problems: List[str]):
        self.index, self.stage, self.exchange, self.problems = index, stage, exchange, problems
        super().__init__(f"stage {index} {stage!r}: " + "; ".join(problems) + (f"\n  {exchange}" if exchange else ""))


def resolve_stages(stages: List[dict], shared: Dict[str, dict]) -> List[dict]:
    resolved = []
    for stage in stages:
        if stage.get("type") == "ref":
            if stage.get("id") not in shared:
                raise ValueError(f"unknown shared stage {stage.get('id')!r}")
            stage = shared[stage["id"]]
        resolved.append(stage)
    return resolved


def call_ext(ext: Dict[str, Callable[..., dict]], spec: dict, response) -> dict:
    """What a `$ext: {function, extra_kwargs}` block saves."""
    function = ext.get(spec.get("function"))
    if function is None:
        raise ValueError(f"$ext function {spec.get('function')!r} is not provided to this runner")
    return function(response, **(spec.get("extra_kwargs") or {}))


def run_case(
    case: dict,
    stages: List[dict],
    *,
    variables: dict,
    session,
    upload: Callable[[str], tuple],
    timeout: float = 120,
    keep_going: bool = False,
    ext: Optional[Dict[str, Callable[..., dict]]] = None,
    prepare: Optional[Callable[[dict], dict]] = None,
) -> List[StageFailed]:
    """Run `stages` (already resolved and adapted) of `case` with `session` (a
    requests.Session carrying any auth). `upload(path)` gives (file name, bytes) of a `files:`
    entry; `ext` maps the `$ext` functions a case may call to ours; `prepare(request)`, if
    given, sees every request once its variables are filled in and returns what is sent.
    Raises StageFailed at the first stage whose response does not match, as tavern does; with
    `keep_going`, runs every stage it can and returns the failures instead (a stage needing a
    variable that an earlier failure did not save is one)."""
    import mimetypes

    strict = case.get("strict")
    variables = dict(variables)
    failures: List[StageFailed] = []
    for index, stage in enumerate(stages):
        name = stage.get("name") or stage.get("id") or f"stage {index}"
        spec = stage.get("request") or {}
        for unsupported in ("file_body", "auth", "cert", "cookies", "$ext"):
            if unsupported in spec:
                raise ValueError(f"stage {name!r}: request.{unsupported} is not supported by this runner")
        try:
            request = format_value(spec, variables)
        except MissingVariable as e:
            if not keep_going:
                raise
            failures.append(StageFailed(index, name, None, [f"not sent: {e}"]))
            continue
        if prepare is not None:
            request = prepare(request)
        headers = dict(request.get("headers") or {})
        kwargs: Dict[str, Any] = {}
        for key in ("params", "data", "json"):
            if key in request:
                kwargs[key] = request[key]
        if "files" in request:
            # requests sets the multipart content type (with its boundary) itself.
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            files = {}
            for field, path in request["files"].items():
                filename, content = upload(path)
                content_type = mimetypes.guess_type(filename)[0]
                files[field] = (filename, content, content_type) if content_type else (filename, content)
            kwargs["files"] = files
        method = str(request.get("method", "GET")).upper()
        response = session.request(
            method, request["url"], headers=headers, allow_redirects=False, timeout=timeout, **kwargs
        )
        try:
            body = response.json()
        except ValueError:
            body = response.text
        expected_spec = stage.get("response")
        exchange = Exchange(name, method, request["url"], response.status_code, body, expected_spec is not None)
        if expected_spec is None:
            continue  # tavern sends it and checks nothing
        expected = format_value(expected_spec, variables)
        strictness = Strictness.of(expected.get("strict", strict))
        problems = []
        want = expected.get("status_code", 200)
        if response.status_code not in (want if isinstance(want, list) else [want]):
            problems.append(f"status {response.status_code}, expected {want}")
        if "json" in expected:
            if isinstance(body, str):
                problems.append(f"expected JSON {expected['json']!r}, got no JSON body")
            else:
                try:
                    check(expected["json"], body, strictness.json)
                except Mismatch as e:
                    problems.append(f"json {e}")
        if "headers" in expected:
            actual_headers = {k.lower(): v for k, v in response.headers.items()}
            try:
                check({k.lower(): v for k, v in expected["headers"].items()}, actual_headers, strictness.headers)
            except Mismatch as e:
                problems.append(f"headers {e}")
        for block, queries in (expected.get("save") or {}).items():
            if block == "$ext":
                variables.update(call_ext(ext or {}, queries, response))
                continue
            if block != "json":
                raise ValueError(f"stage {name!r}: save.{block} is not supported by this runner")
            for as_name, query in queries.items():
                value = jmespath.search(query, body) if not isinstance(body, str) else None
                if value is None:
                    problems.append(f"cannot save {as_name!r}: {query!r} is not in the response")
                else:
                    variables[as_name] = value
        for unsupported in ("verify_response_with", "cookies", "redirect_query_params"):
            if unsupported in expected:
                raise ValueError(f"stage {name!r}: response.{unsupported} is not supported by this runner")
        if problems:
            failure = StageFailed(index, name, exchange, problems)
            if not keep_going:
                raise failure
            failures.append(failure)
    return failures

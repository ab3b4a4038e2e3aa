"""Finding which import storage serves a URI, and rewriting storage URIs in task data.

A task may hold `s3://bucket/key` (or gs://, azure-blob://, redis://) anywhere in its data,
also inside longer strings (HTML). Served tasks get those URIs replaced by the service's
resolve URL, which checks access and redirects to or streams the object. The storage whose
bucket matches serves a URI, so tasks from bucket A can point at files in bucket B.
"""

import base64
import binascii
import re
from urllib.parse import urlsplit

from django.conf import settings

from io_storages import registry


def split_uri(uri):
    """`scheme://bucket/key` -> (scheme, bucket, key); None when it is not such a URI."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    key = parts.path.lstrip("/")
    if parts.query:  # a key may contain "?"
        key += "?" + parts.query
    return parts.scheme, parts.netloc, key


#: resolving never reads the last sync's report; `traceback` holds a line per failed object,
#: megabytes after a large sync that went wrong
_UNUSED_FIELDS = ("traceback", "meta")


def storage_for_uri(uri, **filters):
    """The import storage serving `uri` among those matching `filters`, and the key inside
    it, or (None, None): one query, of the provider that the URI's scheme names."""
    parts = split_uri(uri)
    if parts is None:
        return None, None
    return find_storage(registry.storages(schemes={parts[0]}, defer=_UNUSED_FIELDS, **filters), uri)


def find_storage(storages, uri):
    """The first storage that can serve `uri` and the object key inside it, or (None, None)."""
    parts = split_uri(uri)
    if parts is None:
        return None, None
    for storage in storages:
        key = storage.key_for_uri(*parts)
        if key is not None:
            return storage, key
    return None, None


def encode_fileuri(uri):
    return base64.urlsafe_b64encode(uri.encode()).decode()


def decode_fileuri(value):
    """The URI a `fileuri` parameter carries: urlsafe base64, or a plain URI (older clients)."""
    if "://" in value:
        return value
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return value


def uri_pattern(schemes):
    """The storage URIs of `schemes` in a string. A URI that is a whole quoted value (an HTML
    attribute: `href="s3://b/my file's.jpg"`) runs to the closing quote of its line, spaces and
    the other quote character included, as Label Studio rewrites it; any other URI ends at
    whitespace, a quote or `<`/`>`, so the words after a URI in plain text stay text. The match
    never includes the quotes, and the URI is taken as written (percent-escapes are kept)."""
    scheme = "(?:" + "|".join(re.escape(s) for s in schemes) + ")://"
    return re.compile(
        rf"(?<=\"){scheme}[^\"\r\n]*(?=\")"  # "...": up to the closing double quote
        rf"|(?<='){scheme}[^'\r\n]*(?=')"  # '...': up to the closing single quote
        rf"|{scheme}[^\s\"'<>]+"  # elsewhere: up to whitespace, a quote or a tag
    )


def whole_uri_pattern(schemes):
    """A value that is one storage URI, as Label Studio reads one: a string that starts with
    the scheme (surrounding whitespace aside) is a URI to the end of its line, spaces included
    (`s3://b/my file.jpg`, what a blob import of a key with spaces holds)."""
    scheme = "(?:" + "|".join(re.escape(s) for s in schemes) + ")://"
    return re.compile(rf"{scheme}[^\r\n]*")


class TaskDataResolver:
    """Rewrites the storage URIs of many tasks of one project; the project's storages are
    loaded once, and only when a candidate URI is found.

    Links start with `HOSTNAME` (the public URL) when it is set, else with `base_url`; the
    API gives none, so without HOSTNAME links are relative (`/tasks/<id>/resolve/?fileuri=`),
    as Label Studio writes them: the request's own host may not be the one a browser uses."""

    def __init__(self, project_id, base_url=""):
        self.project_id = project_id
        self.base_url = (settings.HOSTNAME or base_url).rstrip("/")
        self._storages = None
        self._pattern = self._whole = None  # URIs inside a string / a string that is one URI

    @property
    def storages(self):
        if self._storages is None:
            self._storages = registry.project_storages(self.project_id, defer=_UNUSED_FIELDS)
        return self._storages

    @property
    def pattern(self):
        if self._pattern is None:
            schemes = sorted({s.url_scheme for s in self.storages if s.url_scheme})
            if not schemes:
                self._pattern = self._whole = False
            else:
                self._pattern, self._whole = uri_pattern(schemes), whole_uri_pattern(schemes)
        return self._pattern

    def resolve_url(self, task_id, uri):
        return f"{self.base_url}/tasks/{task_id}/resolve/?fileuri={encode_fileuri(uri)}"

    def rewrite(self, task_id, data):
        """`data` with every resolvable URI replaced (a new structure; the input is untouched).
        Without recursion: a task stored before the nesting limit (tasks.importing.MAX_DEPTH)
        may be deeper than Python's recursion limit."""

        def leaf(value):
            if isinstance(value, str) and "://" in value and self.pattern:
                stripped = value.strip()
                if self._whole.fullmatch(stripped):
                    return value.replace(stripped, self._replace(task_id, stripped), 1)
                return self.pattern.sub(lambda m: self._replace(task_id, m.group(0)), value)
            return value

        def copy(value):
            """An empty container of `value`'s kind (queued to be filled), or the leaf rewritten."""
            if isinstance(value, dict):
                pending.append((value, {}))
                return pending[-1][1]
            if isinstance(value, list):
                pending.append((value, []))
                return pending[-1][1]
            return leaf(value)

        pending = []  # (source container, its copy, filled later)
        result = copy(data)
        while pending:
            source, target = pending.pop()
            if isinstance(target, dict):
                for key, value in source.items():
                    target[key] = copy(value)
            else:
                target.extend(copy(value) for value in source)
        return result

    def _replace(self, task_id, uri):
        storage, _ = find_storage(self.storages, uri)
        return self.resolve_url(task_id, uri) if storage else uri


def resolver_context(request, project_id):
    """Serializer context that rewrites storage URIs in task data (unless ?resolve_uri=false),
    to links under HOSTNAME, or relative ones when it is not set (never the request's host)."""
    if request.query_params.get("resolve_uri", "true").lower() in ("false", "0", "no"):
        return {}
    return {"resolver": TaskDataResolver(project_id)}

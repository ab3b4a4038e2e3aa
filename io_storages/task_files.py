"""Turn the bytes of one storage object into task rows, streaming.

An import storage that is not in blob mode reads each object and creates tasks
from it. Supported contents:

* a single JSON object -> one task (``row_index`` is ``None``);
* a JSON list of objects -> one task per item;
* JSONL / NDJSON (``.jsonl``, ``.ndjson``, or ``{``-content with more than one
  value, one per line) -> one task per non-empty line;
* Parquet (``.parquet``) -> one task per row, with its row group.

Everything except a single JSON object is read incrementally, so memory use
stays flat however big the object is. Errors may be raised mid-stream; rows
yielded before the error are valid. A row nested deeper than the task limit
(tasks.importing.MAX_DEPTH) is an error, raised before the parser goes further
down than that (JSON lists) or where Python's json gives up (RecursionError).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from typing import Iterator

import ijson

from tasks.importing import MAX_DEPTH

CHUNK_SIZE = 64 * 1024
PARQUET_SPOOL_MAX_MEMORY = 16 * 1024 * 1024
PARQUET_BATCH_SIZE = 1024
# Parquet columns that Label Studio exports sometimes hold as JSON text.
JSON_TEXT_COLUMNS = ("data", "annotations", "predictions", "meta")

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"


class TaskFileError(ValueError):
    """The object is not a valid task file; message names the problem (and line/row when known)."""


@dataclass(frozen=True)
class TaskRow:
    value: dict  # the raw task object as parsed (flat data or {"data": ..., "annotations": ...})
    row_index: int | None  # None for a single JSON object; else 0-based (within the row group for parquet)
    row_group: int | None  # parquet row group number, else None


def iter_task_rows(key: str, fileobj) -> Iterator[TaskRow]:
    """Yield the tasks stored in one object.

    ``fileobj`` is a binary file-like object with ``.read(n)`` (e.g. a boto3
    StreamingBody); it does not need to be seekable.
    """
    name = key.lower()
    if name.endswith(".parquet"):
        yield from _iter_parquet(key, fileobj)
        return

    stream = _PeekableStream(fileobj)
    first = stream.first_non_whitespace_byte()
    if first is None:
        raise TaskFileError(f"{key} is empty")
    if name.endswith((".jsonl", ".ndjson")):
        yield from _iter_jsonl(key, _numbered_lines(stream))
    elif first == b"[":
        yield from _iter_json_list(key, stream)
    elif first == b"{":
        yield from _iter_object_or_jsonl(key, stream)
    else:
        raise TaskFileError(f"{key} is not JSON: it must start with '{{' or '[' (found {first!r})")


# --- reading helpers -----------------------------------------------------------


class _PeekableStream:
    """Wraps a ``.read(n)`` stream: drops a leading UTF-8 BOM and lets us peek ahead."""

    def __init__(self, raw):
        self._raw = raw
        self._buffer = b""
        self._started = False

    def _read_raw(self, size: int) -> bytes:
        if size == 0:
            return b""
        data = self._raw.read(size) or b""
        if not self._started:
            # Read until we can tell whether the stream starts with a BOM.
            while len(data) < len(_BOM) and data == _BOM[: len(data)]:
                more = self._raw.read(size) or b""
                if not more:
                    break
                data += more
            self._started = True
            if data.startswith(_BOM):
                data = data[len(_BOM) :] or self._raw.read(size) or b""
        return data

    def first_non_whitespace_byte(self) -> bytes | None:
        """Return the first non-whitespace byte (without consuming anything), or None at EOF."""
        while True:
            stripped = self._buffer.lstrip(_WHITESPACE)
            if stripped:
                return stripped[:1]
            chunk = self._read_raw(CHUNK_SIZE)
            if not chunk:
                return None
            self._buffer += chunk

    def read(self, size: int = -1) -> bytes:
        if self._buffer:
            if size is None or size < 0:
                data, self._buffer = self._buffer, b""
                return data + self._read_all()
            data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data
        if size is None or size < 0:
            return self._read_all()
        return self._read_raw(size)

    def _read_all(self) -> bytes:
        chunks = []
        while chunk := self._read_raw(CHUNK_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)


def _numbered_lines(stream) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` (1-based, newline kept) reading in chunks."""
    line_number = 0
    pending = b""
    while chunk := stream.read(CHUNK_SIZE):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            line_number += 1
            yield line_number, line + b"\n"
    if pending:
        yield line_number + 1, pending


def _decode_line(key: str, line_number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskFileError(f"{key} is not valid UTF-8 (line {line_number}: {e.reason})") from None


def _require_object(key: str, value, where: str) -> dict:
    if not isinstance(value, dict):
        raise TaskFileError(f"{key}: {where} is not a JSON object (got {type(value).__name__})")
    return value


# --- JSON formats ------------------------------------------------------------


class _NotJSON(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, but they are not JSON (RFC 8259) and
    PostgreSQL's jsonb refuses them, which would fail the sync's whole batch of inserts."""


class _TooDeep(_NotJSON):
    """Nested deeper than MAX_DEPTH levels (tasks.importing), which no task may be; Python's json
    raises RecursionError some hundreds of levels further down."""

    def __init__(self):
        super().__init__(f"nests deeper than {MAX_DEPTH} levels")


def _refuse_constant(name):
    raise _NotJSON(f"{name} is not a JSON value")


def _loads(text: str):
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _TooDeep() from None


def _iter_jsonl(key: str, lines: Iterator[tuple[int, bytes]], start_index: int = 0) -> Iterator[TaskRow]:
    """One JSON object per non-empty line; row_index counts non-empty lines."""
    row_index = start_index
    for line_number, raw in lines:
        text = _decode_line(key, line_number, raw).strip()
        if not text:
            continue
        try:
            value = _loads(text)
        except json.JSONDecodeError as e:
            raise TaskFileError(f"{key}: invalid JSON on line {line_number}, column {e.colno}: {e.msg}") from None
        except _TooDeep as e:
            raise TaskFileError(f"{key}: line {line_number} {e}") from None
        except _NotJSON as e:
            raise TaskFileError(f"{key}: invalid JSON on line {line_number}: {e}") from None
        yield TaskRow(_require_object(key, value, f"line {line_number}"), row_index, None)
        row_index += 1


def _iter_json_list(key: str, stream) -> Iterator[TaskRow]:
    """Items of a top-level JSON list, parsed one at a time from ijson's events."""
    index = 0
    items = _list_items(ijson.basic_parse(stream, use_float=True))
    while True:
        try:
            value = next(items)
        except StopIteration:
            return
        except _TooDeep as e:
            raise TaskFileError(f"{key}: list item {index} {e}") from None
        except ijson.JSONError as e:
            reason = _ijson_reason(e)
            if "UTF8" in reason:
                raise TaskFileError(f"{key} is not valid UTF-8 (near list item {index})") from None
            raise TaskFileError(f"{key}: invalid JSON near list item {index}: {reason}") from None
        except UnicodeDecodeError as e:
            raise TaskFileError(f"{key} is not valid UTF-8 (list item {index}: {e.reason})") from None
        yield TaskRow(_require_object(key, value, f"list item {index}"), index, None)
        index += 1


def _list_items(events) -> Iterator:
    """The items of the JSON list whose `basic_parse` events are `events`, built one at a time;
    an item nested deeper than MAX_DEPTH raises _TooDeep as soon as its level MAX_DEPTH + 1
    starts. (`ijson.items` keeps the path prefix of every open level: its memory grows with
    the square of the depth, 1 GB for a 40 KB file of 20,000 brackets.)"""
    event, _ = next(events)  # the file starts with "[" (iter_task_rows looked)
    if event != "start_array":
        raise ijson.JSONError(f"expected a list, got {event}")
    open_containers = []  # the item being built and the containers open inside it, innermost last
    keys = []  # the pending key of each open container (None for lists)
    for event, value in events:
        if event == "map_key":
            keys[-1] = value
            continue
        if event == "start_map" or event == "start_array":
            if len(open_containers) >= MAX_DEPTH:
                raise _TooDeep()
            value = {} if event == "start_map" else []
            if open_containers:
                parent = open_containers[-1]
                if type(parent) is dict:
                    parent[keys[-1]] = value
                else:
                    parent.append(value)
            open_containers.append(value)
            keys.append(None)
            continue
        if event == "end_map" or event == "end_array":
            if not open_containers:  # the end of the list itself
                break
            value = open_containers.pop()
            keys.pop()
            if not open_containers:
                yield value
            continue
        if not open_containers:  # a number, string... as a list item
            yield value
            continue
        parent = open_containers[-1]
        if type(parent) is dict:
            parent[keys[-1]] = value
        else:
            parent.append(value)
    for _ in events:  # the parser refuses anything but whitespace after the list
        raise ijson.JSONError("trailing content after the list")


def _ijson_reason(error: Exception) -> str:
    """First line of an ijson error (the yajl backend adds a multi-line snippet, sometimes as bytes)."""
    message = error.args[0] if error.args else ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    lines = str(message).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _iter_object_or_jsonl(key: str, stream) -> Iterator[TaskRow]:
    """Content starting with '{': one JSON object, or JSONL without the extension.

    If the first non-empty line is a complete JSON object and more content
    follows, the file is JSONL. Otherwise the whole file must be one object
    (possibly pretty-printed over many lines), which is read into memory.
    """
    lines = _numbered_lines(stream)
    seen: list[bytes] = []  # raw lines so far, for the single-object fallback
    first_text = ""
    for line_number, raw in lines:
        seen.append(raw)
        first_text = _decode_line(key, line_number, raw).strip()
        if first_text:
            break
    try:
        first = _loads(first_text)
    except ValueError:  # not JSON (or not only JSON) on its own
        first = None

    if isinstance(first, dict):
        for next_number, raw in lines:
            if _decode_line(key, next_number, raw).strip():
                # More values follow: this is JSONL.
                yield TaskRow(first, 0, None)
                yield from _iter_jsonl(key, _chain([(next_number, raw)], lines), start_index=1)
                return
        yield TaskRow(first, None, None)
        return

    # The first line alone is not a JSON object: parse the whole file as one value.
    seen.extend(raw for _, raw in lines)
    try:
        text = b"".join(seen).decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskFileError(f"{key} is not valid UTF-8 ({e.reason})") from None
    try:
        value = _loads(text)
    except json.JSONDecodeError as e:
        raise TaskFileError(f"{key}: invalid JSON on line {e.lineno}, column {e.colno}: {e.msg}") from None
    except _TooDeep as e:
        raise TaskFileError(f"{key} {e}") from None
    except _NotJSON as e:
        raise TaskFileError(f"{key}: invalid JSON: {e}") from None
    yield TaskRow(_require_object(key, value, "the file"), None, None)


def _chain(first, rest):
    yield from first
    yield from rest


# --- Parquet -----------------------------------------------------------------


def _iter_parquet(key: str, fileobj) -> Iterator[TaskRow]:
    """Rows of a Parquet file, one batch at a time, with their row group."""
    # Imported here, not for a cycle: pyarrow adds ~55 MB to every process that loads it,
    # and only storages holding Parquet files need it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyarrow needs random access: spool the stream (in memory up to a limit, then on disk).
    with tempfile.SpooledTemporaryFile(max_size=PARQUET_SPOOL_MAX_MEMORY) as spool:
        shutil.copyfileobj(fileobj, spool, CHUNK_SIZE)
        if spool.tell() == 0:
            raise TaskFileError(f"{key} is empty")
        spool.seek(0)
        try:
            parquet = pq.ParquetFile(spool)
        except (pa.ArrowException, OSError) as e:
            raise TaskFileError(f"{key} is not a valid Parquet file: {e}") from None

        for row_group in range(parquet.num_row_groups):
            row_index = 0
            try:
                for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_SIZE, row_groups=[row_group]):
                    for row in batch.to_pylist():
                        try:
                            task = _parquet_row_to_task(row)
                        except (_TooDeep, RecursionError):
                            raise TaskFileError(
                                f"{key}: row {row_index} of row group {row_group} nests deeper than {MAX_DEPTH} levels"
                            ) from None
                        yield TaskRow(task, row_index, row_group)
                        row_index += 1
            except (pa.ArrowException, OSError) as e:
                raise TaskFileError(
                    f"{key}: cannot read Parquet row group {row_group} (after row {row_index}): {e}"
                ) from None


def _parquet_row_to_task(row: dict) -> dict:
    task = {column: _json_safe(value) for column, value in row.items()}
    for column in JSON_TEXT_COLUMNS:
        value = task.get(column)
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                decoded = _loads(value)
            except _TooDeep:
                raise
            except ValueError:  # not JSON after all: the text stays as it is
                continue
            if isinstance(decoded, (dict, list)):
                task[column] = decoded
    return task


def _json_safe(value):
    """Convert values pyarrow produces into JSON-serialisable ones."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # NaN/inf are not valid JSON
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    return str(value)

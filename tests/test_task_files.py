"""Tests for io_storages.task_files (pure pytest, no Django).

Run: .venv/bin/python -m pytest -p no:django --noconftest tests/test_task_files.py -q
"""

import datetime
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from io_storages.task_files import TaskFileError, TaskRow, iter_task_rows


class NonSeekableStream:
    """Like a boto3 StreamingBody: only .read(n); counts the bytes handed out."""

    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)
        self.bytes_read = 0

    def read(self, n=-1):
        data = self._buf.read(n)
        self.bytes_read += len(data)
        return data


def rows(key, data: bytes):
    return list(iter_task_rows(key, NonSeekableStream(data)))


def values(result):
    return [r.value for r in result]


def indexes(result):
    return [(r.row_index, r.row_group) for r in result]


# --- JSON ----------------------------------------------------------------------


def test_single_object():
    task = {"data": {"text": "hello"}, "annotations": [{"result": []}]}
    assert rows("a/task.json", json.dumps(task, indent=2).encode()) == [TaskRow(task, None, None)]


def test_single_object_on_one_line_without_trailing_newline():
    assert rows("task.json", b'  {"text": "x"}') == [TaskRow({"text": "x"}, None, None)]


def test_list():
    data = json.dumps([{"text": "a"}, {"text": "b", "score": 1.5}, {"text": "c"}]).encode()
    result = rows("tasks.json", data)
    assert values(result) == [{"text": "a"}, {"text": "b", "score": 1.5}, {"text": "c"}]
    assert indexes(result) == [(0, None), (1, None), (2, None)]
    assert isinstance(result[1].value["score"], float)  # not Decimal


def test_empty_list_has_no_rows():
    assert rows("tasks.json", b" [ ] ") == []


@pytest.mark.parametrize("key", ["tasks.jsonl", "tasks.NDJSON", "tasks.json", "tasks"])
def test_jsonl_with_and_without_extension(key):
    data = b'{"text": "a"}\n{"text": "b"}\r\n{"text": "c"}\n'
    result = rows(key, data)
    assert values(result) == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    assert indexes(result) == [(0, None), (1, None), (2, None)]


@pytest.mark.parametrize("key", ["tasks.jsonl", "tasks.json"])
def test_jsonl_blank_lines_are_skipped(key):
    data = b'\n\n{"text": "a"}\n\n   \n{"text": "b"}\n\n'
    result = rows(key, data)
    assert values(result) == [{"text": "a"}, {"text": "b"}]
    assert indexes(result) == [(0, None), (1, None)]


def test_single_line_jsonl_file_is_one_row():
    assert indexes(rows("tasks.jsonl", b'{"text": "a"}\n')) == [(0, None)]


@pytest.mark.parametrize(
    "key, data, expected",
    [
        ("task.json", b'\xef\xbb\xbf{"text": "a"}', [TaskRow({"text": "a"}, None, None)]),
        ("tasks.json", b'\xef\xbb\xbf [{"text": "a"}]', [TaskRow({"text": "a"}, 0, None)]),
        (
            "tasks.jsonl",
            b'\xef\xbb\xbf{"text": "a"}\n{"text": "b"}',
            [TaskRow({"text": "a"}, 0, None), TaskRow({"text": "b"}, 1, None)],
        ),
    ],
)
def test_utf8_bom_is_skipped(key, data, expected):
    assert rows(key, data) == expected


def test_bom_split_across_reads():
    class OneByteAtATime(NonSeekableStream):
        def read(self, n=-1):
            return super().read(1)

    data = b'\xef\xbb\xbf[{"text": "\xc3\xa9"}]'
    assert values(iter_task_rows("t.json", OneByteAtATime(data))) == [{"text": "é"}]


def test_non_ascii_text():
    task = {"text": "日本語 ünïcödé"}
    assert values(rows("t.jsonl", json.dumps(task, ensure_ascii=False).encode())) == [task]


# --- JSON errors ---------------------------------------------------------------------


def test_broken_json_in_list():
    data = b'[{"text": "a"}, {"text": "b"}, {"text": oops}]'
    it = iter_task_rows("tasks.json", NonSeekableStream(data))
    with pytest.raises(TaskFileError, match=r"tasks\.json: invalid JSON near list item 2"):
        list(it)


def test_rows_before_an_error_are_yielded():
    data = b'{"text": "a"}\n{"text": "b"}\n{"text": \n'
    it = iter_task_rows("tasks.jsonl", NonSeekableStream(data))
    assert next(it).value == {"text": "a"}
    assert next(it).value == {"text": "b"}
    with pytest.raises(TaskFileError, match="line 3"):
        next(it)


@pytest.mark.parametrize("key", ["tasks.jsonl", "tasks.json"])
def test_broken_jsonl_line_names_the_line(key):
    data = b'{"text": "a"}\n\n{"text": "b"}\n{"text": "c",,}\n{"text": "d"}\n'
    with pytest.raises(TaskFileError, match=r"invalid JSON on line 4"):
        rows(key, data)


def test_broken_pretty_printed_object_names_the_line():
    data = b'{\n  "text": "a",\n  "n": 1,\n  oops\n}\n'
    with pytest.raises(TaskFileError, match=r"task\.json: invalid JSON on line 4"):
        rows("task.json", data)


def test_truncated_list():
    with pytest.raises(TaskFileError, match="invalid JSON near list item 1"):
        rows("tasks.json", b'[{"text": "a"}, {"text": ')


@pytest.mark.parametrize(
    "key, data, message",
    [
        ("tasks.jsonl", b'{"text": "a"}\n{"score": NaN}\n', "invalid JSON on line 2: NaN is not a JSON value"),
        ("task.json", b'{"score": Infinity}', "invalid JSON: Infinity is not a JSON value"),
        ("task.json", b'{\n  "score": -Infinity\n}', "invalid JSON: -Infinity is not a JSON value"),
        ("tasks.json", b'[{"score": NaN}]', "invalid JSON near list item 0"),
    ],
)
def test_nan_and_infinity_are_not_json(key, data, message):
    # Python's json reads them; PostgreSQL's jsonb refuses them, failing the sync's whole batch.
    with pytest.raises(TaskFileError, match=message):
        rows(key, data)


@pytest.mark.parametrize(
    "key, data, where",
    [
        ("tasks.json", b'[{"text": "a"}, "just a string"]', "list item 1"),
        ("tasks.json", b"[[1, 2]]", "list item 0"),
        ("tasks.jsonl", b'{"text": "a"}\n\n[1, 2]\n', "line 3"),
        ("tasks.json", b'{"text": "a"}\n42\n', "line 2"),
        ("tasks.jsonl", b'"hello"\n', "line 1"),
    ],
)
def test_items_that_are_not_objects(key, data, where):
    with pytest.raises(TaskFileError, match=f"{where} is not a JSON object"):
        rows(key, data)


@pytest.mark.parametrize(
    "key, data",
    [
        ("tasks.json", b""),
        ("tasks.json", b" \n\t\r\n"),
        ("tasks.jsonl", b"\n\n"),
        ("tasks", b"\xef\xbb\xbf \n"),
        ("tasks.parquet", b""),
    ],
)
def test_empty_file(key, data):
    with pytest.raises(TaskFileError, match="is empty"):
        rows(key, data)


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"hello world", b"42"])
def test_not_json(data):
    with pytest.raises(TaskFileError, match=r"img\.png is not JSON"):
        rows("img.png", data)


@pytest.mark.parametrize(
    "key, data",
    [
        ("tasks.json", b'[{"text": "\xff\xfe"}]'),
        ("tasks.jsonl", b'{"text": "ok"}\n{"text": "\xff\xfe"}\n'),
        ("task.json", b'{\n"text": "\xff\xfe"}'),
        ("task.json", b'{"text": "\xff\xfe"}'),
    ],
)
def test_non_utf8(key, data):
    with pytest.raises(TaskFileError, match="UTF-8|UTF8"):
        rows(key, data)


def test_garbage_parquet():
    with pytest.raises(TaskFileError, match=r"x\.parquet is not a valid Parquet file"):
        rows("x.parquet", b"\x00\x01garbage" * 100)


def test_task_file_error_is_value_error():
    assert issubclass(TaskFileError, ValueError)


# --- Parquet ---------------------------------------------------------------------


def parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def test_parquet_row_groups_and_conversion():
    n = 7
    ts = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)
    table = pa.table(
        {
            "data": [json.dumps({"text": f"t{i}"}) for i in range(n)],
            "annotations": [json.dumps([{"result": [{"value": i}]}]) for i in range(n)],
            "meta": ["not json {"] * n,  # left alone when it does not parse
            "predictions": [None] * n,
            "label": ["[not json"] + ["[1, 2]"] * (n - 1),  # not a JSON-text column: kept as text
            "created_at": pa.array([ts + datetime.timedelta(days=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "day": pa.array([datetime.date(2024, 1, i + 1) for i in range(n)], pa.date32()),
            "blob": pa.array([b"\x00\xff", b"plain"] + [b""] * (n - 2), pa.binary()),
            "price": pa.array([f"{i}.25" for i in range(n)]).cast(pa.decimal128(10, 2)),
            "score": [float("nan")] + [0.5] * (n - 1),
        }
    )
    result = rows("export/tasks.parquet", parquet_bytes(table, row_group_size=3))

    assert indexes(result) == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2)]
    first = result[0].value
    assert first["data"] == {"text": "t0"}
    assert first["annotations"] == [{"result": [{"value": 0}]}]
    assert first["meta"] == "not json {"
    assert first["predictions"] is None
    assert first["label"] == "[not json"
    assert result[1].value["label"] == "[1, 2]"
    assert first["created_at"] == "2024-05-01T12:30:00+00:00"
    assert result[4].value["created_at"] == "2024-05-05T12:30:00+00:00"
    assert first["day"] == "2024-01-01"
    assert first["blob"] == "AP8="  # base64 of non-UTF-8 bytes
    assert result[1].value["blob"] == "plain"
    assert first["price"] == 0.25 and result[3].value["price"] == 3.25
    assert first["score"] is None and result[1].value["score"] == 0.5
    assert [r.value["data"]["text"] for r in result] == [f"t{i}" for i in range(n)]
    for r in result:
        json.dumps(r.value, allow_nan=False)  # everything is JSON-safe


def test_parquet_flat_and_nested_columns():
    table = pa.table(
        {
            "text": ["a", "b"],
            "nested": pa.array([{"x": 1, "tags": ["p"]}, {"x": 2, "tags": []}]),
            "mapping": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
        }
    )
    result = rows("flat.PARQUET", parquet_bytes(table, row_group_size=100))
    assert indexes(result) == [(0, 0), (1, 0)]
    assert result[0].value["text"] == "a"
    assert result[0].value["nested"] == {"x": 1, "tags": ["p"]}
    json.dumps([r.value for r in result], allow_nan=False)


def test_parquet_row_index_is_continuous_across_batches(monkeypatch):
    monkeypatch.setattr("io_storages.task_files.PARQUET_BATCH_SIZE", 2)
    table = pa.table({"text": [str(i) for i in range(10)]})
    result = rows("t.parquet", parquet_bytes(table, row_group_size=5))
    assert indexes(result) == [(i, 0) for i in range(5)] + [(i, 1) for i in range(5)]
    assert [r.value["text"] for r in result] == [str(i) for i in range(10)]


def test_parquet_spools_to_disk_past_the_memory_limit(monkeypatch):
    monkeypatch.setattr("io_storages.task_files.PARQUET_SPOOL_MAX_MEMORY", 1024)
    table = pa.table({"text": [f"row {i} " + "x" * 50 for i in range(500)]})
    result = rows("big.parquet", parquet_bytes(table, row_group_size=100))
    assert len(result) == 500
    assert indexes(result)[-1] == (99, 4)


# --- streaming -------------------------------------------------------------------


def test_list_is_streamed():
    item = json.dumps({"data": {"text": "lorem ipsum dolor sit amet " * 3}}).encode()
    data = b"[\n" + b",\n".join([item] * 200_000) + b"\n]"
    assert len(data) > 15_000_000

    stream = NonSeekableStream(data)
    it = iter_task_rows("big.json", stream)
    first = next(it)
    assert first.row_index == 0
    assert stream.bytes_read < 1_000_000

    for _ in range(999):
        next(it)
    assert stream.bytes_read < 1_000_000


def test_jsonl_is_streamed():
    line = json.dumps({"text": "lorem ipsum dolor sit amet " * 3}).encode()
    data = b"\n".join([line] * 100_000)
    for key in ("big.jsonl", "big.json"):
        stream = NonSeekableStream(data)
        it = iter_task_rows(key, stream)
        assert next(it).row_index == 0
        assert next(it).row_index == 1
        assert stream.bytes_read < 1_000_000

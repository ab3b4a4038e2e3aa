"""What every provider's StorageClient promises (io_storages/client.py), checked against each
provider's real server through the client the service itself builds from a storage."""

import gzip
import json

import pytest

from io_storages.client import ObjectNotFound, RangeNotSatisfiable, StorageError
from tests.providers import ENCODING_KINDS

DATA = b"0123456789"


@pytest.fixture
def stored(provider):
    """(client, key) of a 10-byte object."""
    location = provider.new_location()
    provider.put(location, "r.bin", DATA)
    return provider.client(location), provider.client_key(location, "r.bin")


@pytest.mark.parametrize(
    "start, end, body, returned",
    [
        (None, None, DATA, (None, None)),
        (0, 0, b"0", (0, 0)),
        (2, 5, b"2345", (2, 5)),
        (3, None, b"3456789", (3, 9)),  # open-ended
        (5, 100, b"56789", (5, 9)),  # end clamped to the object
        (None, 1, b"01", (0, 1)),  # end only: from the start
    ],
)
def test_open_reads_exact_ranges(stored, start, end, body, returned):
    client, key = stored
    with client.open(key, start, end) as stream:
        assert stream.read() == body
        assert (stream.start, stream.end) == returned
        assert stream.total_size == stream.info.size == 10
        assert stream.content_length == len(body)


@pytest.mark.parametrize("start, end", [(10, None), (20, 30), (5, 2), (-1, 3)])
def test_unsatisfiable_ranges_are_refused(stored, start, end):
    client, key = stored
    with pytest.raises(RangeNotSatisfiable):
        client.open(key, start, end)


def test_whole_reads_stream_in_chunks(stored):
    client, key = stored
    assert client.read(key) == DATA
    with client.open(key) as stream:
        assert b"".join(stream.chunks(3)) == DATA


def test_missing_objects_are_object_not_found(stored):
    client, key = stored
    missing = key.replace("r.bin", "missing.bin")
    with pytest.raises(ObjectNotFound):
        client.stat(missing)
    with pytest.raises(ObjectNotFound):
        client.open(missing)


def test_stat_write_and_delete(stored):
    client, key = stored
    assert client.stat(key).size == 10
    new_key = key.replace("r.bin", "w.json")
    client.write(new_key, b'{"a": 1}')
    assert client.read(new_key) == b'{"a": 1}'
    client.delete(new_key)
    client.delete(new_key)  # deleting a missing object is not an error
    with pytest.raises(ObjectNotFound):
        client.stat(new_key)


def test_an_empty_object_reads_as_empty_bytes(provider):
    location = provider.new_location()
    provider.put(location, "empty.txt", b"")
    client = provider.client(location)
    assert client.read(provider.client_key(location, "empty.txt")) == b""


encoding_providers = pytest.mark.parametrize("provider", ENCODING_KINDS, indirect=True)
CONTENT = json.dumps([{"data": {"text": f"row {i}"}} for i in range(200)]).encode()
GZIPPED = gzip.compress(CONTENT, mtime=0)


@encoding_providers
def test_gzip_encoded_objects_are_read_as_stored_and_decoded_on_request(provider):
    location = provider.new_location()
    provider.put(location, "tasks.json", GZIPPED, content_encoding="gzip")
    client, key = provider.client(location), provider.client_key(location, "tasks.json")

    assert client.stat(key).content_encoding == "gzip"
    with client.open(key) as stream:  # SDKs must not decompress: sizes and ranges are the stored ones
        assert stream.info.content_encoding == "gzip"
        assert gzip.decompress(stream.read()) == CONTENT
    with client.open(key) as stream:
        assert stream.decoded_body().read() == CONTENT
    with client.open(key, 0, 9) as stream:
        assert stream.read() == GZIPPED[:10]


@encoding_providers
def test_bad_gzip_is_a_storage_error_naming_the_key(provider):
    location = provider.new_location()
    provider.put(location, "broken.json", b"not gzip at all", content_encoding="gzip")
    client, key = provider.client(location), provider.client_key(location, "broken.json")
    with client.open(key) as stream, pytest.raises(StorageError, match="broken.json.*not valid gzip"):
        stream.decoded_body().read()

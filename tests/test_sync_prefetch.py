"""The listing prefetch of import sync: order kept, errors surface, early stop ends the thread."""

import threading
import time

import pytest

from io_storages.sync import prefetched


def test_items_arrive_in_order():
    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))


def test_a_listing_error_is_raised_in_the_consumer():
    def listing():
        yield 1
        raise RuntimeError("bucket vanished")

    consumed = []
    with pytest.raises(RuntimeError, match="bucket vanished"):
        for item in prefetched(listing()):
            consumed.append(item)
    assert consumed == [1]


def test_the_producer_stops_when_the_consumer_does():
    produced = []

    def listing():
        for i in range(1000):
            produced.append(i)
            yield i

    iterator = prefetched(listing(), depth=2)
    assert next(iterator) == 0
    iterator.close()  # e.g. the database write failed
    time.sleep(1.2)  # the producer notices within its 0.5 s put timeout
    assert len(produced) < 10
    assert not [t for t in threading.enumerate() if t.name == "storage-listing"]

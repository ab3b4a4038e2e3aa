"""Import sync: list objects, skip those already linked, create tasks and links in bulk.

Built for millions of objects: the listing is consumed page by page, "already linked?" is
one query per batch of keys, and each batch of tasks is created and linked in one
transaction, so progress is durable after every batch and an interrupted sync resumes on
the next run without duplicates.
"""

import queue
import re
import threading
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from io_storages.client import StorageError
from io_storages.task_files import TaskFileError, iter_task_rows
from tasks.importing import TaskFormatError, create_tasks, parse_task


def chunked(iterable, size):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


_END = object()


def prefetched(iterable, depth=2):
    """Iterate `iterable` in a background thread, at most `depth` items ahead.

    The next listing page downloads and parses while this thread writes the current batch to
    the database, so a sync takes about as long as the listing alone. Memory stays bounded
    (`depth` batches); errors of the producer are raised here; when the consumer stops early
    the producer stops at its next item.
    """
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item):
        """Put `item` unless the consumer has gone; False when it has."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.5)
                return True
            except queue.Full:
                pass
        return False

    def produce():
        try:
            for item in iterable:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    producer = threading.Thread(target=produce, name="storage-listing", daemon=True)
    producer.start()
    try:
        while (item := items.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def matching_objects(storage, client):
    """The objects a sync of `storage` considers: listed under its prefix, filtered by its
    regex_filter (matched from the start of the key). The files preview shows the same."""
    pattern = re.compile(storage.regex_filter) if storage.regex_filter else None
    for obj in client.list_objects(storage.key_prefix, recursive=storage.recursive_scan):
        if pattern is None or pattern.match(obj.key):
            yield obj


class ImportSync:
    def __init__(self, storage, progress):
        self.storage = storage
        self.progress = progress
        self.client = storage.get_client()
        self.links = storage.links
        self.batch_size = settings.STORAGE_SYNC_BATCH_SIZE
        self.data_key = storage.project.data_key
        self.pending = []  # (ParsedTask, key, row_index, row_group) waiting to be created
        self.errors = []
        self.created = self.existed = self.flushes = 0

    def run(self):
        for objects in prefetched(chunked(matching_objects(self.storage, self.client), self.batch_size)):
            linked = self._linked_task_counts([o.key for o in objects])
            self.existed += sum(linked.values())
            for obj in objects:
                if obj.key not in linked:
                    self._collect(obj.key)
                self.progress.tick()
            self._flush()
        self._flush()
        return self.errors

    def _linked_task_counts(self, keys):
        rows = self.links.filter(key__in=keys).values("key").annotate(n=Count("id")).values_list("key", "n")
        return dict(rows)

    def _collect(self, key):
        if self.storage.use_blob_urls:
            self._add(parse_task({self.data_key: self.storage.uri_for(key)}), key, None, None)
            return
        first_pending, flushes = len(self.pending), self.flushes
        try:
            with self.client.open(key) as stream:
                for row in iter_task_rows(key, stream.decoded_body()):
                    self._add(parse_task(row.value), key, row.row_index, row.row_group)
                    self.progress.tick()
        except (TaskFileError, TaskFormatError, StorageError) as e:
            if flushes == self.flushes:
                # Nothing of this object is stored yet: drop its rows, so that a fixed object
                # imports whole on the next sync.
                del self.pending[first_pending:]
                self.errors.append(f"{self.storage.uri_for(key)}: {e}; nothing imported from it")
            else:
                # A big object already had batches committed: those tasks stay.
                self.errors.append(f"{self.storage.uri_for(key)}: {e}; rows before this point were imported")

    def _add(self, parsed, key, row_index, row_group):
        self.pending.append((parsed, key, row_index, row_group))
        if len(self.pending) >= self.batch_size:
            self._flush()

    def _flush(self):
        if self.pending:
            link_model = self.links.model
            with transaction.atomic():
                tasks = create_tasks(
                    self.storage.project, [p[0] for p in self.pending], user=self.storage.project.created_by
                )
                link_model.objects.bulk_create(
                    link_model(storage=self.storage, task=task, key=key, row_index=row_index, row_group=row_group)
                    for task, (_, key, row_index, row_group) in zip(tasks, self.pending)
                )
            self.created += len(self.pending)
            self.flushes += 1
            self.pending = []
        self.progress.count = self.created
        self.progress.meta = {"tasks_existed": self.existed}
        self.progress.save()

"""Import sync: list objects, skip those already linked, create tasks and links in bulk.

Built for millions of objects: the listing is consumed page by page, "already linked?" is
one query per batch of keys, and each batch of tasks is created and linked in one
transaction, so progress is durable after every batch and an interrupted sync resumes on
the next run without duplicates.

`ImportSync.import_keys` imports given keys instead of a listing (the keys a bucket notified:
io_storages.events), by the same rules: `key_matches` is the listing's filter for one key.
Each batch is written under a lock on the storage row and re-checked there, so a sync and an
event consumer importing the same new key at once create its task once.
"""

import logging
import queue
import threading
from itertools import islice

import re2
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from io_storages.client import ObjectNotFound, StorageError, unexpected_error
from io_storages.task_files import TaskFileError, iter_task_rows
from tasks.importing import TaskFormatError, create_tasks, parse_task

logger = logging.getLogger(__name__)


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


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the user's error, said in the answer

#: Why RE2: said wherever a pattern is refused.
RE2_REQUIRED = (
    "regex_filter must use RE2 syntax, which matches in linear time so that no pattern can hold "
    "the server: backreferences (\\1, (?P=name)) and lookaround ((?=...), (?!...), (?<=...), "
    "(?<!...)) are not supported"
)


class RegexFilterError(StorageError):
    """A regex_filter that RE2 cannot compile (one stored before RE2 was required)."""


def compile_regex_filter(pattern):
    """`pattern` compiled by RE2, or None for no pattern; ValueError naming the problem when
    RE2 cannot compile it."""
    if not pattern:
        return None
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as e:
        reason = e.args[0] if e.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"{RE2_REQUIRED} ({reason or 'invalid pattern'})") from None


def _matches(pattern, key):
    try:
        return pattern.match(key) is not None
    except UnicodeError:  # a key that is not Unicode text matches nothing
        return False


def stored_regex_filter(storage):
    """The storage's regex_filter compiled (None: no pattern); RegexFilterError when the stored
    pattern does not compile (one saved before RE2 was required)."""
    try:
        return compile_regex_filter(storage.regex_filter)
    except ValueError as e:
        raise RegexFilterError(f"The stored {e}: edit the storage's regex_filter") from None


def matching_objects(storage, client):
    """The objects a sync of `storage` considers: listed under its prefix, filtered by its
    regex_filter (RE2, compiled once here, matched from the start of the key as `re.match`
    does). The files preview shows the same. RegexFilterError, at once, when the stored
    pattern does not compile."""
    pattern = stored_regex_filter(storage)
    objects = client.list_objects(storage.key_prefix, recursive=storage.recursive_scan)
    if pattern is None:
        return objects
    return (obj for obj in objects if _matches(pattern, obj.key))


def key_matches(storage, pattern, key):
    """Whether a listing of `storage` would yield `key` (with `pattern`, its
    `stored_regex_filter`): under its prefix, not a folder placeholder (`a/`), directly under
    the prefix unless `recursive_scan` (a listing with delimiter "/"), matching the pattern."""
    prefix = storage.key_prefix
    if not key or not key.startswith(prefix) or key.endswith("/"):
        return False
    if not getattr(storage, "recursive_scan", True) and "/" in key[len(prefix) :]:
        return False
    return pattern is None or _matches(pattern, key)


class _Unreadable(Exception):
    """An object whose bytes are not tasks: the message says why."""


class ImportSync:
    def __init__(self, storage, progress, client=None):
        self.storage = storage
        self.progress = progress
        self.client = client or storage.get_client()
        self.links = storage.links
        self.batch_size = settings.STORAGE_SYNC_BATCH_SIZE
        self.data_key = storage.project.data_key
        self.pending = []  # (ParsedTask, key, row_index, row_group) waiting to be created
        self.errors = []
        self.created = self.existed = self.flushes = self.ignored = 0

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

    def import_keys(self, keys):
        """Import exactly `keys` (a bucket's notifications), no listing: those a listing would
        not yield (`key_matches`) are left out (`self.ignored` counts them), linked keys create
        nothing (`self.existed`), repeated keys count once. A key whose object is gone is an
        error of that key (in blob mode found with one stat per new key, since nothing else
        reads the object). Returns the errors, as `run` does."""
        pattern = stored_regex_filter(self.storage)
        unique = list(dict.fromkeys(keys))
        wanted = [key for key in unique if key_matches(self.storage, pattern, key)]
        self.ignored += len(unique) - len(wanted)
        for batch in chunked(wanted, self.batch_size):
            linked = self._linked_task_counts(batch)
            self.existed += sum(linked.values())
            for key in batch:
                if key not in linked and (not self.storage.use_blob_urls or self._still_exists(key)):
                    self._collect(key)
                self.progress.tick()
            self._flush()
        self._flush()
        return self.errors

    def _still_exists(self, key):
        try:
            self.client.stat(key)
            return True
        except ObjectNotFound:
            self.errors.append(f"{self.storage.uri_for(key)}: no longer exists; nothing imported from it")
        except StorageError as e:
            problem = str(e).encode("utf-8", "backslashreplace").decode("utf-8")
            self.errors.append(f"{self.storage.uri_for(key)}: {problem}; nothing imported from it")
        return False

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
                rows = iter_task_rows(key, stream.decoded_body())
                while (row := self._next_task(key, rows)) is not None:
                    self._add(*row)  # storing: a database error fails the sync
                    self.progress.tick()
        except (_Unreadable, StorageError) as e:
            # Both name the problem, but a message may quote the object: keep it Unicode text.
            problem = str(e).encode("utf-8", "backslashreplace").decode("utf-8")
            if flushes == self.flushes:
                # Nothing of this object is stored yet: drop its rows, so that a fixed object
                # imports whole on the next sync.
                del self.pending[first_pending:]
                self.errors.append(f"{self.storage.uri_for(key)}: {problem}; nothing imported from it")
            else:
                # A big object already had batches committed: those tasks stay.
                self.errors.append(f"{self.storage.uri_for(key)}: {problem}; rows before this point were imported")

    def _next_task(self, key, rows):
        """(ParsedTask, key, row_index, row_group) of the next row of an object, or None at its
        end. Whatever goes wrong reading or parsing it is that object's error (_Unreadable),
        never the batch's: the other objects import."""
        try:
            row = next(rows, None)
            return None if row is None else (parse_task(row.value), key, row.row_index, row.row_group)
        except (TaskFileError, TaskFormatError, StorageError) as e:
            raise _Unreadable(str(e)) from e
        except Exception as e:  # a parser's own error (pyarrow, ijson, ...)
            message = unexpected_error(logger, f"Reading {self.storage.uri_for(key)}", e)
            raise _Unreadable(f"cannot be read: {message}") from e

    def _add(self, parsed, key, row_index, row_group):
        self.pending.append((parsed, key, row_index, row_group))
        if len(self.pending) >= self.batch_size:
            self._flush()

    def _flush(self):
        if self.pending:
            link_model = self.links.model
            with transaction.atomic():
                pending = self._not_linked_meanwhile()
                if pending:
                    tasks = create_tasks(
                        self.storage.project, [p[0] for p in pending], user=self.storage.project.created_by
                    )
                    link_model.objects.bulk_create(
                        link_model(storage=self.storage, task=task, key=key, row_index=row_index, row_group=row_group)
                        for task, (_, key, row_index, row_group) in zip(tasks, pending)
                    )
            self.created += len(pending)
            self.existed += len(self.pending) - len(pending)
            self.flushes += 1
            self.pending = []
        self.progress.count = self.created
        self.progress.meta = {"tasks_existed": self.existed}
        self.progress.save()

    def _not_linked_meanwhile(self):
        """The pending rows whose (key, row) no other importer of this storage linked since
        they were looked up (a sync beside an event consumer, or two consumers), read under a
        lock on the storage row that every importer's batch takes (inside the caller's
        transaction; SQLite's IMMEDIATE transactions serialize writers anyway). Rows of an
        object that this run committed in an earlier batch have other row numbers: kept."""
        type(self.storage).objects.select_for_update().filter(pk=self.storage.pk).values_list("pk").first()
        linked = set(
            self.links.filter(key__in={p[1] for p in self.pending}).values_list("key", "row_index", "row_group")
        )
        if not linked:
            return self.pending
        return [p for p in self.pending if (p[1], p[2], p[3]) not in linked]

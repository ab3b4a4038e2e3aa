"""sync_storage TYPE ID [--export] [--only-new] [--force]: sync one storage in the foreground,
in this process (never through the job queue, whatever REDIS_URL says), with a progress bar.

The storage row goes through the same states as a background sync (queued, in_progress,
completed / completed_with_errors / failed), so the API and admin show a command-line sync
like any other, and the one-sync-at-a-time guard applies to both.
"""

import argparse
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from io_storages.jobs import Progress, check_health, claim_sync, run_sync
from io_storages.registry import PROVIDERS, storage_model


class BarProgress(Progress):
    """Progress that also moves a tqdm bar each time it is written to the storage row."""

    def __init__(self, storage, bar):
        super().__init__(storage)
        self.bar = bar

    def save(self):
        super().save()
        self.bar.n = self.count
        if "tasks_existed" in self.meta:
            self.bar.set_postfix(existed=self.meta["tasks_existed"], refresh=False)
        self.bar.refresh()


class Command(BaseCommand):
    help = "Sync one import (or, with --export, export) storage now, in this process, showing progress."

    def add_arguments(self, parser):
        parser.add_argument("storage_type", metavar="type", help=f"storage type: {', '.join(PROVIDERS)}")
        parser.add_argument("storage_id", metavar="id", type=int, help="storage id")
        parser.add_argument("--export", action="store_true", help="the id is an export storage's")
        parser.add_argument(
            "--only-new", action="store_true", help="export: only annotations not yet exported to this storage"
        )
        parser.add_argument(
            "--force", action="store_true", help="sync even if the storage is queued or in progress elsewhere"
        )
        parser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show the progress bar (default: only when stderr is a terminal)",
        )

    def handle(self, storage_type, storage_id, export=False, only_new=False, force=False, progress=None, **options):
        storage = self.get_storage(storage_type, storage_id, export)
        if only_new and not export:
            raise CommandError("--only-new applies to export storages (add --export)")
        self.queue(storage, force)

        sync_options = {"only_new": only_new} if export else {}
        unit = " annotations" if export else " tasks"
        started = time.monotonic()
        with tqdm(
            desc=f"{storage_type} {'export' if export else 'import'} #{storage.pk}",
            unit=unit,
            file=self.stderr._out,  # the raw stream: OutputWrapper would add a newline per update
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        ) as bar:
            run_sync(storage, BarProgress(storage, bar), **sync_options)
        elapsed = time.monotonic() - started

        storage.refresh_from_db()
        count = storage.last_sync_count or 0
        if export:
            counts = f"{count} annotations exported"
        else:
            counts = f"{count} tasks created, {storage.meta.get('tasks_existed', 0)} already existed"
        self.stdout.write(f"{storage_type} storage #{storage.pk}: {storage.status}, {counts}, {elapsed:.1f} s")

        if storage.status in (storage.Status.FAILED, storage.Status.COMPLETED_WITH_ERRORS) and storage.traceback:
            self.stderr.write(storage.traceback.rstrip())
        if storage.status == storage.Status.FAILED:
            raise CommandError(f"sync of {storage_type} storage #{storage.pk} failed", returncode=1)

    @staticmethod
    def get_storage(storage_type, storage_id, export):
        kind = "export" if export else "import"
        try:
            model = storage_model(storage_type, export)
        except KeyError:
            raise CommandError(f"Unknown storage type {storage_type!r}; known types: {', '.join(PROVIDERS)}")
        storage = model.objects.filter(pk=storage_id).first()
        if storage is None:
            raise CommandError(f"{storage_type} {kind} storage #{storage_id} does not exist")
        return storage

    def queue(self, storage, force):
        """The one-sync-at-a-time guard of the API applies here too."""
        status = check_health(storage).status
        if not claim_sync(storage, force=force):
            raise CommandError(
                f"{storage} is already {storage.status} (job {storage.last_sync_job or 'in-process'}); "
                "wait for it to finish, or use --force to sync anyway"
            )
        if force and status in storage.ACTIVE_STATUSES:
            self.stderr.write(f"Warning: {storage} was {status}; syncing anyway (--force)")

"""consume_events [--once] [--storage TYPE:ID ...] [--wait S] [--rescan S]: import what the
buckets notify (io_storages.events).

Every import storage with an `event_queue` (and `synchronizable`) is read: one long-polling
thread per queue and set of credentials, storages re-read every `--rescan` seconds. With
`--once`, each queue is drained (read until a receive comes back empty) and the command
exits: for cron, or to catch up. SIGTERM and Ctrl-C stop it after the batches in hand.
"""

import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from io_storages.events import Consumer, event_storages
from io_storages.registry import PROVIDERS


def storage_ref(text):
    kind, _, pk = text.partition(":")
    if kind not in PROVIDERS or not pk.isdigit():
        raise ValueError(text)
    return kind, int(pk)


class Command(BaseCommand):
    help = "Import the objects that buckets notify, for every import storage with an event_queue."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="drain each queue once, then exit")
        parser.add_argument(
            "--storage",
            action="append",
            type=storage_ref,
            metavar="TYPE:ID",
            help="only this import storage (repeatable), e.g. s3:12",
        )
        parser.add_argument(
            "--wait", type=float, default=None, help="long-poll seconds per receive (default 20; 1 with --once)"
        )
        parser.add_argument(
            "--rescan", type=float, default=30.0, help="seconds between re-reading the storages (default 30)"
        )

    def handle(self, once=False, storage=None, wait=None, rescan=30.0, verbosity=1, **options):
        only = set(storage) if storage else None
        storages = event_storages(only)
        if only and len(storages) < len(only):
            found = {(s.storage_type, s.pk) for s in storages}
            missing = ", ".join(f"{t}:{pk}" for t, pk in sorted(only - found))
            raise CommandError(f"No synchronizable import storage with an event_queue: {missing}")
        out = (lambda text: self.stdout.write(text)) if verbosity > 0 else (lambda text: None)
        if not storages:
            out("No import storage has an event_queue" + ("; waiting for one" if not once else ""))
        consumer = Consumer(
            only=only,
            wait_seconds=wait if wait is not None else (1.0 if once else 20.0),
            rescan_seconds=rescan,
            out=out,
        )
        if once:
            handled = consumer.run_once()
            out(f"{handled} messages handled")
            return
        logging.getLogger("io_storages").setLevel(logging.INFO)
        signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
        out(f"Reading events for {len(storages)} storages (Ctrl-C to stop)")
        try:
            consumer.run()
        except KeyboardInterrupt:
            consumer.stop()

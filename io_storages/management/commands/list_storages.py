"""list_storages [--project ID] [--export | --import]: every storage of every type, as an
aligned text table (`every`: the scheduled sync interval). Stale queued/in-progress statuses
are checked first, as the API does."""

from django.core.management.base import BaseCommand

from io_storages import registry
from io_storages.jobs import check_health

COLUMNS = ("type", "kind", "id", "project", "title", "location", "status", "last_sync", "last_sync_count", "every")


def _text(value):
    if value is None or value == "":
        return "-"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return " ".join(str(value).split())  # one line per storage, whatever the title holds


class Command(BaseCommand):
    help = "List import and export storages of all types (optionally of one project, or one kind)."

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, help="only storages of this project id")
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument("--export", action="store_true", help="only export storages")
        kind.add_argument("--import", dest="import_only", action="store_true", help="only import storages")

    def handle(self, project=None, export=False, import_only=False, **options):
        kinds = [True] if export else [False] if import_only else [False, True]
        filters = {} if project is None else {"project_id": project}
        storages = [storage for is_export in kinds for storage in registry.storages(is_export, **filters)]
        storages.sort(key=lambda storage: (list(registry.PROVIDERS).index(storage.storage_type), storage.is_export))
        rows = [
            [
                storage.storage_type,
                "export" if storage.is_export else "import",
                storage.pk,
                storage.project_id,
                storage.title,
                storage.location,
                check_health(storage).status,
                storage.last_sync,
                storage.last_sync_count,
                f"{storage.sync_interval_minutes:g}min" if storage.sync_interval_minutes else None,
            ]
            for storage in storages
        ]
        if not rows:
            self.stderr.write("No storages")
            return
        table = [list(COLUMNS)] + [[_text(value) for value in row] for row in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

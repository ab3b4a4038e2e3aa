"""reencrypt_storage_secrets: after a key rotation (a new key put first in
STORAGE_SECRET_KEYS), encrypt every stored storage secret (and webhook secret) with that first key, so the old keys
can be dropped from the list. Secrets already under the first key are left alone; secrets no
key decrypts are named, left as they are, and make the command exit non-zero."""

from django.core.management.base import BaseCommand, CommandError

from io_storages import registry
from io_storages.fields import reencrypt_rows
from io_storages.webhooks.models import Webhook


class Command(BaseCommand):
    help = "Encrypt every storage secret with the first key of STORAGE_SECRET_KEYS (after a key rotation)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="database alias (default: default)")

    def handle(self, database="default", **options):
        total, failed = 0, []
        models = [m for p in registry.PROVIDERS.values() for m in (p.import_model, p.export_model)] + [Webhook]
        for model in models:
            if model.secret_fields:
                rewritten, undecryptable = reencrypt_rows(model, model.secret_fields, using=database)
                total += rewritten
                failed += [f"{model.__name__} #{pk} {name}" for pk, name in undecryptable]
        self.stdout.write(f"Re-encrypted {total} storage secret(s) with the first key of STORAGE_SECRET_KEYS")
        if failed:
            raise CommandError("No key of STORAGE_SECRET_KEYS decrypts these (left as they are): " + ", ".join(failed))

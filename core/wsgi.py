"""WSGI entry point: `gunicorn core.wsgi` (Dockerfile, docker-compose, scripts/serve.sh)."""

import gc
import importlib
import os

from django.core.wsgi import get_wsgi_application

from io_storages.registry import PROVIDERS  # reads no model: safe before Django is set up

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
application = get_wsgi_application()

from core import jobs  # noqa: E402 - needs the settings that get_wsgi_application set up

# Without Redis, this process runs the periodic jobs (scheduled syncs) itself.
jobs.start_in_process_scheduler()


def _freeze_startup_objects():
    """Import every provider's client (and so its SDK) now, then hide what start-up made
    from the cyclic garbage collector.

    Those objects live as long as the worker, yet each full collection walked all of them
    (about 110,000, 150,000 once botocore's S3 model is loaded): pauses of 50-70 ms that
    made the proxy's p99 under load (docs/performance.md). The first request that needs an
    SDK also no longer waits for its import.
    """
    for provider in PROVIDERS.values():
        importlib.import_module(provider.client_module)
    gc.collect()
    gc.freeze()


_freeze_startup_objects()

"""Every provider's models, and the webhooks', registered under the `io_storages` app (one migrations folder)."""

from io_storages.azure_blob.models import *  # noqa: F401,F403
from io_storages.gcs.models import *  # noqa: F401,F403
from io_storages.localfiles.models import *  # noqa: F401,F403
from io_storages.redis.models import *  # noqa: F401,F403
from io_storages.s3.models import *  # noqa: F401,F403
from io_storages.webhooks.models import *  # noqa: F401,F403

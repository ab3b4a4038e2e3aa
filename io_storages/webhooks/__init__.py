"""Webhooks: per project, URLs that receive a signed JSON POST when a storage sync starts,
completes or fails (Label Studio's /api/webhooks/ shape, with our STORAGE_SYNC_* actions).

- `models`: `Webhook` (url, write-only `secret`, headers, actions) and the action names.
- `events`: listens to `io_storages.jobs.sync_started` / `sync_finished`, builds the event
  and queues one delivery per webhook after the sync's state is committed.
- `delivery`: the delivery job: signs the body (HMAC-SHA256), POSTs it through the SSRF
  checks (at connect and on the connected peer, no redirects), retries with backoff.
- `serializers`, `api`, `urls`, `admin`: the REST API and the Django admin.
"""

"""RQ's cron configuration for `python manage.py rqcron core.cron` (with Redis): every entry
of PERIODIC_JOBS, enqueued on the `default` queue at its interval. Without Redis the web
process runs the same jobs itself (core.jobs.start_in_process_scheduler)."""

from rq import cron

from core.jobs import periodic_jobs

for func, seconds in periodic_jobs():
    # A tick shorter than a second makes no sense for RQ's cron (its interval is whole seconds).
    cron.register(func, queue_name="default", interval=max(1, round(seconds)))

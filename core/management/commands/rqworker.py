"""`manage.py rqworker`: django-rq's worker, serving every queue of the service when no queue
is named, with RQ's scheduler on. django-rq's own command listens to `default` only, while
syncs go to STORAGE_SYNC_QUEUE (`low`): a worker started as django-rq's documentation shows it
would leave every sync `queued` forever. The scheduler runs jobs due later (webhook retries
after their backoff); `--no-scheduler` turns it off. Named queues are served as given."""

from django_rq.management.commands.rqworker import Command as DjangoRQWorkerCommand

from core.jobs import all_queue_names


class Command(DjangoRQWorkerCommand):
    help = "Runs an RQ worker (with RQ's scheduler) on the given queues, or on every queue of the service."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--no-scheduler", action="store_true", help="do not run RQ's scheduler (jobs due later) in this worker"
        )

    def handle(self, *args, no_scheduler=False, **options):
        options["with_scheduler"] = options.get("with_scheduler") or not no_scheduler
        return super().handle(*(args or all_queue_names()), **options)

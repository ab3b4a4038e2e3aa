"""`manage.py rqworker`: django-rq's worker, serving every queue of the service when no queue
is named. django-rq's own command listens to `default` only, while syncs go to
STORAGE_SYNC_QUEUE (`low`): a worker started as django-rq's documentation shows it would
leave every sync `queued` forever. Named queues are served as given."""

from django_rq.management.commands.rqworker import Command as DjangoRQWorkerCommand

from core.jobs import all_queue_names


class Command(DjangoRQWorkerCommand):
    help = "Runs an RQ worker on the given queues, or on every queue of the service when none is given."

    def handle(self, *args, **options):
        return super().handle(*(args or all_queue_names()), **options)

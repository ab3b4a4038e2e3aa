"""Automatic export: a saved annotation is written to every export storage of its project,
a deleted one is removed from those that allow deleting. Work is queued after the
transaction commits, so the job sees the committed annotation."""

from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from core import jobs
from io_storages.export import export_annotation_job, remove_annotation_job
from io_storages.registry import model_label, project_storages
from tasks.models import Annotation


@receiver(post_save, sender=Annotation, dispatch_uid="io_storages.export_on_save")
def export_saved_annotation(sender, instance, **kwargs):
    for storage in project_storages(instance.project_id, export=True):
        transaction.on_commit(
            partial(
                jobs.enqueue,
                export_annotation_job,
                model_label(type(storage)),
                storage.pk,
                instance.pk,
                queue_name=settings.STORAGE_EXPORT_QUEUE,
            )
        )


@receiver(pre_delete, sender=Annotation, dispatch_uid="io_storages.remove_on_delete")
def remove_deleted_annotation(sender, instance, **kwargs):
    for storage in project_storages(instance.project_id, export=True):
        if not storage.can_delete_objects:
            continue
        # The links go with the annotation: take the keys now.
        for key in storage.links.filter(annotation=instance).values_list("key", flat=True):
            transaction.on_commit(
                partial(
                    jobs.enqueue,
                    remove_annotation_job,
                    model_label(type(storage)),
                    storage.pk,
                    key,
                    instance.task_id,
                    queue_name=settings.STORAGE_EXPORT_QUEUE,
                )
            )

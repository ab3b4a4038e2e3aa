"""Export: write annotations (or whole tasks) to export storages, and remove them.

One code path for every provider: serialisation and key naming here, the write through the
storage's `StorageClient`. Manual syncs upload with a thread pool; automatic export on
annotation save/delete goes through the job runner (see io_storages/signals.py).
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from io_storages.client import StorageError
from io_storages.registry import storage_from_label
from io_storages.sync import chunked
from tasks.models import Annotation
from tasks.serializers import AnnotationSerializer, PredictionSerializer

CHUNK = 500  # annotations serialised and uploaded per round


def max_workers():
    return min(8, (os.cpu_count() or 1) * 4)


def task_mode():
    """FUTURE_SAVE_TASK_TO_STORAGE: one object per task (`<task id>.json`) with all its
    annotations, instead of one object per annotation."""
    return settings.FUTURE_SAVE_TASK_TO_STORAGE


def object_key(storage, annotation):
    name = f"{annotation.task_id}.json" if task_mode() else str(annotation.id)
    return storage.export_key(name)


def _task_fields(task):
    return {
        "id": task.id,
        "data": task.data,
        "meta": task.meta,
        "inner_id": task.inner_id,
        "project": task.project_id,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "is_labeled": task.is_labeled,
        "total_annotations": task.total_annotations,
        "cancelled_annotations": task.cancelled_annotations,
        "total_predictions": task.total_predictions,
    }


def serialize(annotation):
    """The bytes written for `annotation`: the annotation with its task (default), or the
    whole task with all its annotations and predictions (task mode)."""
    task = annotation.task
    if task_mode():
        body = _task_fields(task)
        body["annotations"] = AnnotationSerializer(task.annotations.order_by("id"), many=True).data
        body["predictions"] = PredictionSerializer(task.predictions.order_by("id"), many=True).data
    else:
        body = dict(AnnotationSerializer(annotation).data)
        body["task"] = _task_fields(task)
    return json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False).encode()


def export_project(storage, progress, only_new=False):
    """Export every annotation of the storage's project, or (`only_new`) only those never
    exported to this storage; the sync job of an export storage."""
    annotations = Annotation.objects.filter(project_id=storage.project_id)
    if only_new:
        annotations = annotations.exclude(pk__in=storage.links.values("annotation_id"))
    return export_annotations(storage, annotations, progress)


def export_annotations(storage, annotations, progress=None):
    """Write every annotation of the queryset; return the list of error messages.

    Serialisation (database reads) stays in this thread; only uploads go to the pool. Links
    are upserted per chunk, so a re-run after a crash redoes at most one chunk.
    """
    client = storage.get_client()
    link_model = storage.links.model
    errors = []

    def upload(item):
        key, (data, _) = item
        try:
            client.write(key, data)
            return key, None
        except StorageError as e:
            return key, str(e)

    annotations = annotations.select_related("task").order_by("id")
    with ThreadPoolExecutor(max_workers=max_workers()) as pool:
        for chunk in chunked(annotations.iterator(chunk_size=CHUNK), CHUNK):
            payloads = {}  # key -> (bytes, annotations): in task mode several share one object
            for annotation in chunk:
                key = object_key(storage, annotation)
                if key not in payloads:
                    payloads[key] = (serialize(annotation), [])
                payloads[key][1].append(annotation)
            written = []
            for key, error in pool.map(upload, payloads.items()):
                if error:
                    errors.append(f"{key}: {error}")
                else:
                    written += [(key, a) for a in payloads[key][1]]
            link_model.objects.bulk_create(
                [link_model(storage=storage, annotation=a, key=key) for key, a in written],
                update_conflicts=True,
                unique_fields=["storage", "annotation"],
                update_fields=["key", "object_exists", "updated_at"],
            )
            if progress is not None:
                progress.count += len(written)
                progress.save()
    return errors


def export_annotation_job(label, storage_id, annotation_id):
    """Auto-export of one saved annotation (run through the job runner)."""
    storage = storage_from_label(label, storage_id)
    if storage is not None:
        export_annotations(storage, Annotation.objects.filter(pk=annotation_id))


def remove_annotation_job(label, storage_id, key, task_id):
    """After an annotation was deleted: delete its object, or in task mode rewrite the task's
    object without it (deleting the object only when no annotation is left)."""
    storage = storage_from_label(label, storage_id)
    if storage is None:
        return
    client = storage.get_client()
    remaining = Annotation.objects.filter(task_id=task_id).order_by("id").first() if task_mode() else None
    if remaining is not None:
        client.write(key, serialize(remaining))
    elif storage.can_delete_objects:
        client.delete(key)

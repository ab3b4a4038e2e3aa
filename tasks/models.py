"""Tasks (items to label), their annotations and predictions."""

from django.conf import settings
from django.db import models
from django.db.models import Count, Max, Q


class Task(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="tasks")
    data = models.JSONField()
    meta = models.JSONField(default=dict, blank=True)
    # 1, 2, 3... within the project, assigned under a project row lock (see next_inner_ids).
    inner_id = models.BigIntegerField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    is_labeled = models.BooleanField(default=False)
    total_annotations = models.IntegerField(default=0)
    cancelled_annotations = models.IntegerField(default=0)
    total_predictions = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "inner_id"], name="unique_task_inner_id")]
        indexes = [models.Index(fields=["project", "is_labeled", "inner_id"])]

    def __str__(self):
        return f"Task #{self.id}"

    @classmethod
    def import_link_accessors(cls):
        """Names of the reverse one-to-one relations from a task to the link of the import
        storage it came from (one per provider; io_storages defines them, this app does not
        import it). For `select_related`, so that `storage_filename` makes no query."""
        return [
            rel.get_accessor_name()
            for rel in cls._meta.related_objects
            if rel.one_to_one and {"key", "row_index"} <= {f.name for f in rel.related_model._meta.get_fields()}
        ]

    @property
    def storage_filename(self):
        """The object key the task was imported from by a storage sync, or None."""
        for accessor in self.import_link_accessors():
            try:
                return getattr(self, accessor).key
            except models.ObjectDoesNotExist:
                continue
        return None

    def update_counters(self, save=True):
        """Recount annotations and predictions (after an annotation is saved or deleted)."""
        counts = self.annotations.aggregate(
            total=Count("id", filter=Q(was_cancelled=False)), cancelled=Count("id", filter=Q(was_cancelled=True))
        )
        self.total_annotations = counts["total"]
        self.cancelled_annotations = counts["cancelled"]
        self.total_predictions = self.predictions.count()
        self.is_labeled = self.total_annotations >= max(self.project.maximum_annotations, 1)
        if save:
            Task.objects.filter(pk=self.pk).update(
                total_annotations=self.total_annotations,
                cancelled_annotations=self.cancelled_annotations,
                total_predictions=self.total_predictions,
                is_labeled=self.is_labeled,
            )


def next_inner_id(project_id):
    """The next free inner_id of a project. Call inside a transaction that holds the project
    row lock (`Project.objects.select_for_update()`), so concurrent imports do not collide."""
    current = Task.objects.filter(project_id=project_id).aggregate(m=Max("inner_id"))["m"]
    return (current or 0) + 1


class Annotation(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="annotations")
    result = models.JSONField(default=list)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    was_cancelled = models.BooleanField(default=False)
    ground_truth = models.BooleanField(default=False)
    lead_time = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Annotation #{self.id} of task #{self.task_id}"


class Prediction(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="predictions")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="predictions")
    result = models.JSONField(default=list)
    score = models.FloatField(null=True, blank=True)
    model_version = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

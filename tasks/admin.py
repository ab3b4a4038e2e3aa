from django.contrib import admin

from tasks.models import Annotation, Prediction, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "inner_id", "is_labeled", "total_annotations", "created_at"]
    list_filter = ["project"]
    raw_id_fields = ["project"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "project", "completed_by", "was_cancelled", "updated_at"]
    raw_id_fields = ["task", "project", "completed_by"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "project", "model_version", "score"]
    raw_id_fields = ["task", "project"]

import datetime
from typing import Optional

from rest_framework import serializers

from tasks.importing import ParsedTask, TaskFormatError, create_tasks, parse_task, refuse_unstorable
from tasks.models import Annotation, Prediction, Task

# How deep each field sits in a task of the full form (tasks.importing.MAX_DEPTH): the task
# object is level 1, its `data` and `meta` level 2, `annotations[i].result` level 4. A value
# accepted here imports again from an exported task.
DATA_LEVEL, RESULT_LEVEL = 2, 4


class AnnotationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Annotation
        fields = [
            "id",
            "task",
            "project",
            "result",
            "completed_by",
            "was_cancelled",
            "ground_truth",
            "lead_time",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["task", "project", "completed_by", "created_at", "updated_at"]

    def validate_result(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError("'result' must be a list of regions")
        refuse_unstorable(value, serializers.ValidationError, level=RESULT_LEVEL)
        return value


class PredictionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prediction
        fields = ["id", "task", "project", "result", "score", "model_version", "created_at"]
        read_only_fields = fields


class TaskSerializer(serializers.ModelSerializer):
    annotations = AnnotationSerializer(many=True, read_only=True)
    predictions = PredictionSerializer(many=True, read_only=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "data",
            "meta",
            "inner_id",
            "created_at",
            "updated_at",
            "is_labeled",
            "total_annotations",
            "cancelled_annotations",
            "total_predictions",
            "annotations",
            "predictions",
        ]
        read_only_fields = [f for f in fields if f not in ("data", "meta")]

    def to_representation(self, task):
        representation = super().to_representation(task)
        resolver = self.context.get("resolver")
        if resolver is not None:
            representation["data"] = resolver.rewrite(task.id, representation["data"])
        return representation

    def validate_data(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("'data' must be a JSON object")
        refuse_unstorable(value, serializers.ValidationError, level=DATA_LEVEL)
        return value

    def validate_meta(self, value):
        # A form field "null" parses to None past DRF's null check; the column is NOT NULL.
        if not isinstance(value, dict):
            raise serializers.ValidationError("'meta' must be a JSON object")
        refuse_unstorable(value, serializers.ValidationError, level=DATA_LEVEL)
        return value


class LabelStudioTaskSerializer(TaskSerializer):
    """A task as Label Studio's project task list (`GET /api/projects/<id>/tasks`) and its task
    creation answer it: the data as stored (storage URIs are not rewritten there), and also the
    fields of Label Studio's task that this service does not keep, with the values they have
    here: no comments, no file uploads, `overlap` the annotations a task needs
    (the project's `maximum_annotations`). Needs `task.project`."""

    overlap = serializers.IntegerField(source="project.maximum_annotations", read_only=True)
    comment_count = serializers.SerializerMethodField()
    unresolved_comment_count = serializers.SerializerMethodField()
    last_comment_updated_at = serializers.SerializerMethodField()
    updated_by = serializers.SerializerMethodField()
    file_upload = serializers.SerializerMethodField()
    comment_authors = serializers.SerializerMethodField()

    class Meta(TaskSerializer.Meta):
        fields = [
            *TaskSerializer.Meta.fields[:-2],
            "overlap",
            "comment_count",
            "unresolved_comment_count",
            "last_comment_updated_at",
            "updated_by",
            "file_upload",
            "comment_authors",
            *TaskSerializer.Meta.fields[-2:],  # annotations, predictions
        ]
        read_only_fields = fields

    def get_comment_count(self, task) -> int:
        return 0

    def get_unresolved_comment_count(self, task) -> int:
        return 0

    def get_last_comment_updated_at(self, task) -> Optional[datetime.datetime]:
        return None

    def get_updated_by(self, task) -> Optional[int]:
        return None

    def get_file_upload(self, task) -> Optional[str]:
        return None

    def get_comment_authors(self, task) -> list[dict]:
        return []


class CreatedTaskSerializer(LabelStudioTaskSerializer):
    """The answer to a task creation: Label Studio's, without annotations and predictions."""

    class Meta(LabelStudioTaskSerializer.Meta):
        fields = [f for f in LabelStudioTaskSerializer.Meta.fields if f not in ("annotations", "predictions")]
        read_only_fields = fields


class TaskCreateSerializer(serializers.Serializer):
    """The body of a task creation in a project (`POST /api/projects/<id>/tasks`): one task,
    `{"data": {...}, "meta": {...}}`, checked by tasks.importing.parse_task as an imported task
    is (NUL characters, lone surrogates, non-finite numbers, nesting). As in Label Studio,
    `data` is required (a body without it is not taken as flat data) and annotations or
    predictions in the body are not created. `save(project=..., user=...)` creates the task."""

    data = serializers.JSONField(help_text="The task's data: a JSON object")
    meta = serializers.JSONField(required=False, help_text="The task's meta: a JSON object")

    def validate_data(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("'data' must be a JSON object")
        return self._parsed({"data": value}).data

    def validate_meta(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("'meta' must be a JSON object")
        return self._parsed({"data": {}, "meta": value}).meta

    @staticmethod
    def _parsed(value):
        try:
            return parse_task(value)
        except TaskFormatError as e:
            raise serializers.ValidationError(str(e)) from None

    def create(self, validated_data):
        parsed = ParsedTask(data=validated_data["data"], meta=validated_data.get("meta") or {})
        (task,) = create_tasks(validated_data["project"], [parsed], user=validated_data.get("user"))
        return Task.objects.select_related("project").get(pk=task.pk)


class TaskWithProjectCreateSerializer(TaskCreateSerializer):
    """The body of `POST /api/tasks/`: a task creation that names its project."""

    # At most a bigint: a longer id is out of the column's range (SQLite raises instead of
    # finding nothing).
    project = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Project id")


class DataManagerTaskSerializer(LabelStudioTaskSerializer):
    """A task as Label Studio's data manager lists it (`GET /api/tasks/?view=<id>`): resolve
    links in `data` (as `GET /api/tasks/?project=`), `storage_filename` (the key a storage sync
    imported it from) and `annotators`; drafts and comments are not kept here (empty). Wants
    `Task.import_link_accessors()` select-related and annotations prefetched."""

    storage_filename = serializers.SerializerMethodField()
    annotators = serializers.SerializerMethodField()
    drafts = serializers.SerializerMethodField()

    class Meta(LabelStudioTaskSerializer.Meta):
        fields = [*LabelStudioTaskSerializer.Meta.fields, "storage_filename", "annotators", "drafts"]
        read_only_fields = fields

    def get_storage_filename(self, task) -> Optional[str]:
        return task.storage_filename

    def get_annotators(self, task) -> list[int]:
        return sorted({a.completed_by_id for a in task.annotations.all() if a.completed_by_id is not None})

    def get_drafts(self, task) -> list[dict]:
        return []

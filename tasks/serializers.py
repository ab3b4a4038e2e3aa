from rest_framework import serializers

from tasks.importing import refuse_unstorable
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

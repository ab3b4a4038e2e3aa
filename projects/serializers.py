from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.models import active_organization
from projects.models import Project, View
from tasks.importing import refuse_unstorable


class UserSimpleSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "email", "username", "first_name", "last_name"]


class ProjectSerializer(serializers.ModelSerializer):
    title = serializers.CharField(min_length=3, max_length=50)
    # Label Studio accepts `"description": null` (the SDK sends it for `description=None`).
    description = serializers.CharField(allow_blank=True, allow_null=True, required=False)
    created_by = UserSimpleSerializer(read_only=True)
    task_number = serializers.IntegerField(read_only=True, required=False)
    num_tasks_with_annotations = serializers.IntegerField(read_only=True, required=False)
    total_annotations_number = serializers.IntegerField(read_only=True, required=False)
    total_predictions_number = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Project
        fields = [
            "id",
            "title",
            "description",
            "label_config",
            "organization",
            "created_by",
            "created_at",
            "maximum_annotations",
            "task_number",
            "num_tasks_with_annotations",
            "total_annotations_number",
            "total_predictions_number",
        ]
        read_only_fields = ["organization", "created_by", "created_at"]

    def validate_description(self, value):
        return value or ""

    def create(self, validated_data):
        user = self.context["request"].user
        organization = active_organization(user)
        if organization is None:
            raise serializers.ValidationError({"organization": ["You are not a member of any organization"]})
        return Project.objects.create(organization=organization, created_by=user, **validated_data)


class ViewSerializer(serializers.ModelSerializer):
    """A data manager view as Label Studio answers it: `{"id", "data", "order", "user", "project"}`.
    `data` is stored as sent (an empty `filters`, which Label Studio drops, is left out)."""

    data = serializers.JSONField(required=False)
    order = serializers.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)

    class Meta:
        model = View
        fields = ["id", "data", "order", "user", "project"]
        read_only_fields = ["id", "user", "project"]

    def validate_data(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("'data' must be a JSON object")
        refuse_unstorable(value, serializers.ValidationError)
        filters = value.get("filters")
        if not filters or (isinstance(filters, dict) and not filters.get("conjunction")):
            value = {k: v for k, v in value.items() if k != "filters"}
        return value

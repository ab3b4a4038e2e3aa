from django.contrib import admin

from projects.models import Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "organization", "created_by", "created_at"]
    list_filter = ["organization"]
    search_fields = ["title"]

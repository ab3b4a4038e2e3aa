from core.api import path
from io_storages import api, views
from io_storages.webhooks import urls as webhook_urls

urlpatterns = [
    path("api/storages", api.AllStoragesAPI.as_view(), name="storages-all"),
    path("api/storages/types", api.StorageTypesAPI.as_view(), name="storage-types"),
    path("api/storages/export", api.AllStoragesAPI.as_view(export=True), name="export-storages-all"),
    path("api/storages/export/types", api.StorageTypesAPI.as_view(), name="export-storage-types"),
]
for prefix, export in (("api/storages", False), ("api/storages/export", True)):
    name = "export-storage" if export else "storage"
    urlpatterns += [
        path(
            f"{prefix}/<str:storage_type>/validate",
            api.StorageValidateAPI.as_view(export=export),
            name=f"{name}-validate",
        ),
        path(f"{prefix}/<str:storage_type>/form", api.StorageFormAPI.as_view(export=export), name=f"{name}-form"),
        path(
            f"{prefix}/<str:storage_type>/<int:pk>/sync", api.StorageSyncAPI.as_view(export=export), name=f"{name}-sync"
        ),
        path(
            f"{prefix}/<str:storage_type>/<int:pk>", api.StorageDetailAPI.as_view(export=export), name=f"{name}-detail"
        ),
        path(f"{prefix}/<str:storage_type>", api.StorageListAPI.as_view(export=export), name=f"{name}-list"),
    ]
    if not export:
        urlpatterns.insert(
            -1, path(f"{prefix}/<str:storage_type>/files", api.StorageFilesAPI.as_view(), name="storage-files")
        )

# Files: resolve links in task data, their /presign aliases, and local files.
urlpatterns += [
    path("tasks/<int:pk>/resolve", views.TaskResolveAPI.as_view(), name="task-resolve"),
    path("tasks/<int:pk>/presign", views.TaskResolveAPI.as_view(), name="task-presign"),
    path("projects/<int:pk>/resolve", views.ProjectResolveAPI.as_view(), name="project-resolve"),
    path("projects/<int:pk>/presign", views.ProjectResolveAPI.as_view(), name="project-presign"),
    path("data/local-files", views.LocalFilesAPI.as_view(), name="local-files"),
]

urlpatterns += webhook_urls.urlpatterns

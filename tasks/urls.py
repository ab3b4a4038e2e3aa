from core.api import path
from tasks import views

urlpatterns = [
    path("api/tasks", views.TaskListAPI.as_view(), name="task-list"),
    path("api/tasks/<int:pk>", views.TaskDetailAPI.as_view(), name="task-detail"),
    path("api/projects/<int:pk>/tasks", views.ProjectTaskListAPI.as_view(), name="project-tasks"),
    path("api/tasks/<int:pk>/annotations", views.TaskAnnotationsAPI.as_view(), name="task-annotations"),
    path("api/annotations/<int:pk>", views.AnnotationDetailAPI.as_view(), name="annotation-detail"),
    path("api/dm/actions", views.DataManagerActionAPI.as_view(), name="dm-actions"),
]

from django.urls import path

from . import api, views

app_name = "traces"

urlpatterns = [
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("generations/", views.GenerationListView.as_view(), name="generations"),
    path("generations/<int:pk>/", views.GenerationDetailView.as_view(), name="generation"),
]

api_urlpatterns = [
    path("generations/batch", api.GenerationBatch.as_view(), name="generation_batch"),
    # `path`: external ids may contain "/" (send it as is or as %2F).
    path(
        "generations/<path:external_id>", api.GenerationDetail.as_view(), name="generation_detail"
    ),
]

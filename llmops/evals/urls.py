from django.urls import path

from . import api, views

app_name = "evals"

urlpatterns = [
    path("", views.RunListView.as_view(), name="runs"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run_detail"),
    path("compare/", views.CompareView.as_view(), name="compare"),
    path("datasets/", views.DatasetListView.as_view(), name="datasets"),
    path("datasets/<int:pk>/", views.DatasetDetailView.as_view(), name="dataset_detail"),
    path(
        "datasets/<int:pk>/export.jsonl", views.DatasetExportView.as_view(), name="dataset_export"
    ),
    path("policies/", views.PolicyView.as_view(), name="policies"),
]

api_urlpatterns = [
    path("eval-datasets", api.DatasetListView.as_view(), name="datasets"),
    path("eval-datasets/<int:pk>/cases", api.DatasetCasesView.as_view(), name="dataset_cases"),
    path("eval-runs", api.RunListView.as_view(), name="runs"),
    path("eval-runs/promptfoo", api.PromptfooRunView.as_view(), name="runs_promptfoo"),
    path("eval-runs/<int:pk>", api.RunDetailView.as_view(), name="run"),
]

"""Prompt registry URLs: pages under /o/<org_slug>/prompts/, the API under /api/v1/."""

from django.urls import path

from . import api, views

app_name = "prompts"

urlpatterns = [
    path("", views.PromptListView.as_view(), name="list"),
    path("new/", views.PromptCreateView.as_view(), name="create"),
    path("<slug:name>/", views.PromptDetailView.as_view(), name="detail"),
    path("<slug:name>/propose/", views.ProposeView.as_view(), name="propose"),
    path("<slug:name>/deploy/", views.DeployView.as_view(), name="deploy"),
    path("<slug:name>/diff/", views.DiffView.as_view(), name="diff"),
    path("<slug:name>/v/<int:number>/", views.VersionView.as_view(), name="version"),
    path("<slug:name>/v/<int:number>/review/", views.ReviewView.as_view(), name="review"),
]

api_urlpatterns = [
    path("prompts", api.PromptList.as_view(), name="prompts"),
    path("prompts/sync", api.Sync.as_view(), name="sync"),
    path("prompts/<slug:name>", api.PromptDetail.as_view(), name="prompt"),
    path("prompts/<slug:name>/resolve", api.Resolve.as_view(), name="resolve"),
    path("prompts/<slug:name>/versions", api.VersionList.as_view(), name="versions"),
    path("prompts/<slug:name>/versions/<int:number>", api.VersionDetail.as_view(), name="version"),
    path(
        "prompts/<slug:name>/versions/<int:number>/reviews",
        api.VersionReview.as_view(),
        name="reviews",
    ),
    path(
        "prompts/<slug:name>/versions/<int:number>/eval-runs",
        api.VersionEvalRuns.as_view(),
        name="eval_runs",
    ),
    path(
        "prompts/<slug:name>/versions/<int:number>/eval-runs/promptfoo",
        api.VersionEvalRunsPromptfoo.as_view(),
        name="eval_runs_promptfoo",
    ),
    path("prompts/<slug:name>/labels/<slug:label>", api.LabelDeploy.as_view(), name="label"),
]

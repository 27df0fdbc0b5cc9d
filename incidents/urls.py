from django.urls import path

from . import api, views

app_name = "incidents"

urlpatterns = [
    path("", views.IncidentListView.as_view(), name="list"),
    path("new/", views.IncidentCreateView.as_view(), name="create"),
    path(
        "from-review/<int:item_id>/",
        views.IncidentFromReviewView.as_view(),
        name="from_review",
    ),
    path("metrics/", views.MetricsView.as_view(), name="metrics"),
    path("runbooks/", views.RunbookListView.as_view(), name="runbooks"),
    path(
        "runbooks/<int:runbook_id>/",
        views.RunbookDetailView.as_view(),
        name="runbook_detail",
    ),
    path("<int:number>/", views.IncidentDetailView.as_view(), name="detail"),
]

api_urlpatterns = [
    path("incidents", api.IncidentListCreate.as_view(), name="incidents"),
    path("incidents/alerts", api.AlertIntake.as_view(), name="alerts"),
    path("incidents/<int:number>", api.IncidentDetail.as_view(), name="incident"),
    path(
        "incidents/<int:number>/transition",
        api.IncidentTransition.as_view(),
        name="transition",
    ),
    path("incidents/<int:number>/timeline", api.IncidentTimeline.as_view(), name="timeline"),
    path(
        "incidents/<int:number>/eval-cases",
        api.IncidentEvalCaseLink.as_view(),
        name="eval_case_link",
    ),
    path("runbooks", api.RunbookListCreate.as_view(), name="runbooks"),
]

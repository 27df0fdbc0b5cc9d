from django.urls import path

from . import api, views

app_name = "reviews"

urlpatterns = [
    path("", views.QueueListView.as_view(), name="list"),
    path("<int:queue_id>/settings/", views.QueueSettingsView.as_view(), name="settings"),
    path("<int:queue_id>/stats/", views.QueueStatsView.as_view(), name="stats"),
    path("<int:queue_id>/adjudication/", views.AdjudicationView.as_view(), name="adjudication"),
    path("<int:queue_id>/export/", views.ExportView.as_view(), name="export"),
    path("<int:queue_id>/claim/", views.ClaimView.as_view(), name="claim"),
    path("<int:queue_id>/items/<int:item_id>/", views.ItemView.as_view(), name="item"),
]

api_urlpatterns = [
    path("queues", api.QueueListApi.as_view(), name="queues"),
    path("queues/<int:queue_id>", api.QueueDetailApi.as_view(), name="queue"),
    path("queues/<int:queue_id>/claim", api.QueueClaimApi.as_view(), name="claim"),
    path("queues/<int:queue_id>/stats", api.QueueStatsApi.as_view(), name="stats"),
    path("queues/<int:queue_id>/export", api.QueueExportApi.as_view(), name="export"),
    path("queue-items/<int:item_id>/review", api.ItemReviewApi.as_view(), name="item_review"),
    path("queue-items/<int:item_id>/release", api.ItemReleaseApi.as_view(), name="item_release"),
]

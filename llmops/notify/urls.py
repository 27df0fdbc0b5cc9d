from django.urls import path

from . import views

app_name = "notify"

urlpatterns = [
    path("inbox/", views.InboxView.as_view(), name="inbox"),
    path("inbox/read-all/", views.InboxReadAllView.as_view(), name="inbox_read_all"),
    path("inbox/<int:notification_id>/read/", views.InboxReadView.as_view(), name="inbox_read"),
    path("webhooks/", views.WebhooksView.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", views.WebhookDetailView.as_view(), name="webhook_detail"),
]

api_urlpatterns: list = []

from django.urls import path

from . import api, views

app_name = "audit"

urlpatterns = [path("audit/", views.AuditLogView.as_view(), name="log")]

api_urlpatterns = [path("audit-events", api.AuditEventList.as_view(), name="api_events")]

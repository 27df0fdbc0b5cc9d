from django.urls import path
from django.views.generic import TemplateView

app_name = "notify"

urlpatterns = [
    path("inbox/", TemplateView.as_view(template_name="base.html"), name="inbox"),
    path("webhooks/", TemplateView.as_view(template_name="base.html"), name="webhooks"),
]

api_urlpatterns: list = []

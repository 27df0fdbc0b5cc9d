from django.urls import path

from . import api, views

app_name = "catalog"

urlpatterns = [
    path("", views.ModelListView.as_view(), name="list"),
    path("new/", views.ProposeView.as_view(), name="propose"),
    path("<int:pk>/", views.ModelDetailView.as_view(), name="detail"),
]

api_urlpatterns = [
    path("models", api.ModelListView.as_view(), name="models"),
    path("models/check", api.ModelCheckView.as_view(), name="model_check"),
    path("models/<int:pk>", api.ModelDetailView.as_view(), name="model"),
    path("models/<int:pk>/decision", api.ModelDecisionView.as_view(), name="model_decision"),
    path("models/<int:pk>/transition", api.ModelTransitionView.as_view(), name="model_transition"),
    path("models/<int:pk>/evidence", api.ModelEvidenceView.as_view(), name="model_evidence"),
    # By exact model id too: GET /api/v1/models/claude-sonnet-4-5-20250929
    path("models/<str:model_id>", api.ModelByIdView.as_view(), name="model_by_id"),
]

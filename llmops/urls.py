"""Root URLs: organization pages under /o/<org_slug>/, the API under /api/v1/."""

from importlib import import_module

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from llmops.tenancy import views as tenancy_views

# (module, prefix under /o/<org_slug>/); each module's urls.py has `urlpatterns` (HTML)
# and `api_urlpatterns` (mounted under /api/v1/).
APP_URLS = [
    ("llmops.tenancy.urls", ""),
    ("llmops.audit.urls", ""),
    ("llmops.notify.urls", ""),
    ("llmops.evals.urls", "evals/"),
    ("llmops.catalog.urls", "models/"),
    ("llmops.traces.urls", ""),
    ("prompts.urls", "prompts/"),
    ("reviews.urls", "reviews/"),
    ("incidents.urls", "incidents/"),
]


def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


org_patterns = []
api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
for module_name, prefix in APP_URLS:
    module = import_module(module_name)
    org_patterns.append(
        path(prefix, include((module.urlpatterns, module.app_name), namespace=module.app_name))
    )
    api_patterns.append(
        path(
            "v1/",
            include(
                (getattr(module, "api_urlpatterns", []), f"{module.app_name}_api"),
                namespace=f"{module.app_name}_api",
            ),
        )
    )

urlpatterns = [
    path("", tenancy_views.index, name="index"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invitations/<str:token>/", tenancy_views.invitation_accept, name="invitation_accept"),
    path("o/<slug:org_slug>/", include(org_patterns)),
    path("api/", include(api_patterns)),
]

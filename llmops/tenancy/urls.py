from django.urls import path

from . import api, views

app_name = "tenancy"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("members/", views.MembersView.as_view(), name="members"),
    path("members/<int:membership_id>/", views.MemberDetailView.as_view(), name="member_detail"),
    path("teams/", views.TeamsView.as_view(), name="teams"),
    path("teams/<int:team_id>/", views.TeamDetailView.as_view(), name="team_detail"),
    path("api-keys/", views.ApiKeysView.as_view(), name="api_keys"),
    path("settings/", views.SettingsView.as_view(), name="settings"),
]

api_urlpatterns = [path("me", api.MeView.as_view(), name="me")]

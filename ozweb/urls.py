from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.api.git_http import git_http_backend
from apps.core.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/agent/", include("apps.agentapi.urls")),
    path("api/v1/", include("apps.api.urls")),
    # git's smart HTTP protocol for team repositories (apps.api.git_http).
    path("git/<slug:team_slug>/<str:name>.git/<path:rest>", git_http_backend, name="git-http"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("apps.teams.urls")),
    path("", include("apps.agents.urls")),
    path("", include("apps.threads.urls")),
    path("", include("apps.runs.urls")),
    path("", include("apps.artifacts.urls")),
    path("", include("apps.repos.urls")),
    path("", include("apps.automations.urls")),
    path("", include("apps.notifications.urls")),
    path("", include("apps.approvals.urls")),
    path("", include("apps.gateway.urls")),
]

handler404 = "apps.api.errors.page_not_found"

"""Production transport: the HTTPS switches in the environment, `check --deploy` clean with
them, and a Content-Security-Policy on every page that the templates and scripts live within."""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest
from django.test import Client

from tests.conftest import web_client_for
from tests.e2e.servers import PYTHON, ROOT, base_env

PRODUCTION = {
    "OZWEB_DEBUG": "false",
    "OZWEB_ALLOWED_HOSTS": "ozweb.example.com",
    "OZWEB_CSRF_TRUSTED_ORIGINS": "https://ozweb.example.com",
    "OZWEB_HTTPS": "true",
    "OZWEB_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "OZWEB_SECURE_HSTS_SECONDS": "31536000",
    "OZWEB_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "OZWEB_SECURE_HSTS_PRELOAD": "true",
}


def python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def production_env(tmp_path, **more: str) -> dict[str, str]:
    return base_env(
        OZWEB_VAR_DIR=str(tmp_path / "var"), OZWEB_SECRET_KEY=secrets.token_urlsafe(50), **more
    )


def test_check_deploy_passes_with_the_production_settings(tmp_path):
    result = python(
        production_env(tmp_path, **PRODUCTION),
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_the_embedded_default_lacks(tmp_path):
    result = python(production_env(tmp_path), "manage.py", "check", "--deploy")

    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


SETTINGS_PRINTED = (
    "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps("
    "[s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
    "s.SECURE_HSTS_PRELOAD, s.SECURE_REDIRECT_EXEMPT]))"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [False, False, False, None, 0, False, False]),
        (PRODUCTION, [True, True, True, ["HTTP_X_FORWARDED_PROTO", "https"], 31536000, True, True]),
        (
            {"OZWEB_HTTPS": "true", "OZWEB_SECURE_SSL_REDIRECT": "false"},
            [True, True, False, None, 0, False, False],
        ),
    ],
)
def test_the_switches_come_from_the_environment(tmp_path, env, expected):
    import json

    result = python(
        production_env(tmp_path, DJANGO_SETTINGS_MODULE="ozweb.settings", **env),
        "-c",
        SETTINGS_PRINTED,
    )

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values[:-1] == expected
    assert values[-1] == [r"^api/v1/agent/", r"^mcp/?$", r"^healthz$", r"^git/"]


def test_the_redirect_spares_the_agent_doors_and_healthz(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    assert client.get("/login/").status_code == 301
    assert client.get("/login/").headers["Location"].startswith("https://")
    assert client.get("/healthz").status_code != 301
    assert client.post("/api/v1/agent/whoami/", {}).status_code == 401


# -- Content-Security-Policy -------------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


@pytest.mark.django_db
def test_every_page_has_the_policy(owner, thread):
    web = web_client_for(owner.user)
    pages = [
        "/login/",
        f"/teams/{owner.team_id}/",
        f"/threads/{thread.pk}/",
        "/api/v1/docs/",
        "/api/v1/teams/",
    ]

    for page in pages:
        csp = policy(web.get(page))
        assert csp["default-src"] == ["'self'"], page
        assert csp["connect-src"] == ["'self'"], page
        assert "script-src" not in csp and "style-src" not in csp, page  # 'self', by default
        assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"], page


@pytest.mark.django_db
def test_the_api_docs_need_no_inline_script(owner):
    web = web_client_for(owner.user)

    page = web.get("/api/v1/docs/").content.decode()
    script = web.get("/api/v1/docs/?script=")

    assert not re.search(r"<script>|<style>", page)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    redoc = web.get("/api/v1/redoc/")
    assert policy(redoc)["style-src"] == ["'self'", "'unsafe-inline'"]  # Redoc's own styles
    assert "fonts.googleapis.com" not in redoc.content.decode()


INLINE = [
    (
        re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"),
        "inline script",
    ),
    (re.compile(r"<style\b"), "style element"),
    (re.compile(r"\sstyle=", re.IGNORECASE), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "event handler attribute"),
    (re.compile(r"\bhx-on\b|\bhx-on[:-]"), "hx-on handler"),
    (re.compile(r"javascript:", re.IGNORECASE), "javascript: URL"),
]


def test_templates_have_nothing_inline_that_the_policy_blocks():
    """What the browser tests cannot reach (every branch of every template) is read here."""
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                found.append(f"{template.relative_to(ROOT)}: {what}: {match.group()}")
    assert found == []


def test_scripts_set_no_style_attributes_or_inline_code():
    for script in (ROOT / "static" / "ozweb").glob("*.js"):
        text = script.read_text()
        assert 'setAttribute("style"' not in text and "innerHTML" not in text, script
        assert not re.search(r"\beval\(|new Function\(", text), script

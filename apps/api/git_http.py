"""git's smart HTTP protocol for team repositories: /git/<team slug>/<name>.git/...

`git http-backend` (CGI) does the protocol; this view authenticates, checks the role, and
streams: the request body into the CGI's stdin and its stdout out as the response, so a clone
of a large repository is never held in memory (under ASGI the response is an async iterator).

Authentication is HTTP basic with any username and, as the password, an API token (the
user's role in the repository's team decides) or a run's token (ozr_..., a member of its
team). No credentials: 401 with `WWW-Authenticate: Basic`, which makes git ask for them. A
refused token counts against the caller's address like every other credential
(apps.core.throttling). Every member can clone and fetch; pushing (receive-pack) needs the
member role; another team's repository is a 404.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token

from apps.agentapi.auth import TokenRefused, TooManyRequests, run_for_authorization
from apps.core.throttling import auth_failed, auth_refused_wait, request_address
from apps.repos import git
from apps.repos.selectors import repo_by_path
from apps.runs.tokens import TOKEN_PREFIX
from apps.teams.models import ROLE_RANK, Membership, Role

logger = logging.getLogger(__name__)

REALM = 'Basic realm="ozweb git", charset="UTF-8"'
READ_SIZE = 64 * 1024
# A stalled client or git process is given up on after this long without a byte.
IDLE_SECONDS = 300.0


@dataclass(frozen=True)
class Access:
    status: int  # 200 when allowed
    message: str = ""
    retry_after: int | None = None
    repo_dir: Path | None = None
    user: str = ""


def _basic_password(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        username, _, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # Some tools put a token in the username and leave the password empty.
    return (password or username).strip() or None


def _is_push(rest: str, request: HttpRequest) -> bool:
    return rest == "git-receive-pack" or request.GET.get("service") == "git-receive-pack"


def authorize(request: HttpRequest, team_slug: str, name: str, rest: str) -> Access:
    """Who may do what (sync: it asks the database)."""
    token = _basic_password(request)
    if token is None:
        return Access(401, "Authentication required: any username, an ozweb token as password.")
    address = request_address(request)
    if token.startswith(TOKEN_PREFIX):
        try:
            run = run_for_authorization(f"Bearer {token}", address=address)
        except TokenRefused as exc:
            return Access(401, exc.message)
        except TooManyRequests as exc:
            return Access(429, exc.message, retry_after=exc.retry_after)
        team_id, role, who = run.team_id, Role.MEMBER, f"run-{run.pk}"
    else:
        found = Token.objects.select_related("user").filter(key=token).first()
        if found is None or not found.user.is_active:
            wait = auth_failed(address)
            if wait is not None:
                return Access(429, "Too many refused tokens.", retry_after=wait)
            return Access(401, "The token is not valid.")
        wait = auth_refused_wait(address)
        if wait is not None:
            return Access(429, "Too many refused tokens.", retry_after=wait)
        membership = (
            Membership.objects.filter(user=found.user, team__slug=team_slug)
            .values_list("team_id", "role")
            .first()
        )
        if membership is None:
            return Access(404, "Repository not found.")
        team_id, role, who = membership[0], Role(membership[1]), found.user.get_username()
    repo = repo_by_path(team_slug=team_slug, name=name)
    if repo is None or repo.team_id != team_id:
        return Access(404, "Repository not found.")
    if _is_push(rest, request) and ROLE_RANK[role] < ROLE_RANK[Role.MEMBER]:
        return Access(403, "Viewers can clone and fetch, not push.")
    return Access(200, repo_dir=git.bare_path(repo), user=who)


def _cgi_env(request: HttpRequest, access: Access, rest: str) -> dict[str, str]:
    assert access.repo_dir is not None
    meta = request.META
    env = git.git_env(
        extra={
            "GIT_PROJECT_ROOT": str(access.repo_dir.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{access.repo_dir.name}/{rest}",
            "REQUEST_METHOD": request.method or "GET",
            "QUERY_STRING": meta.get("QUERY_STRING", ""),
            "CONTENT_TYPE": meta.get("CONTENT_TYPE", ""),
            "REMOTE_USER": access.user,  # http-backend allows receive-pack for a known user
            "REMOTE_ADDR": str(meta.get("REMOTE_ADDR", "")),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
    )
    for key in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
        if meta.get(key):
            env[key] = str(meta[key])
    if meta.get("CONTENT_LENGTH"):
        env["CONTENT_LENGTH"] = str(meta["CONTENT_LENGTH"])
    return env


def _refusal(access: Access) -> HttpResponse:
    response = HttpResponse(
        access.message + "\n", status=access.status, content_type="text/plain; charset=utf-8"
    )
    if access.status == 401:
        response["WWW-Authenticate"] = REALM
    if access.retry_after is not None:
        response["Retry-After"] = str(access.retry_after)
    return response


async def _feed(process: asyncio.subprocess.Process, request: HttpRequest) -> None:
    """The request body into the CGI's stdin, a chunk at a time."""
    assert process.stdin is not None
    try:
        while True:
            chunk = await asyncio.to_thread(request.read, READ_SIZE)
            if not chunk:
                break
            process.stdin.write(chunk)
            await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # git stopped reading: its answer says why
    finally:
        with contextlib.suppress(Exception):
            process.stdin.close()


async def _read_headers(stdout: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]], bytes]:
    """The CGI's status and headers, and the body bytes read past them."""
    buffer = b""
    while True:
        for separator in (b"\r\n\r\n", b"\n\n"):
            head, found, body = buffer.partition(separator)
            if found:
                return (*_parse_headers(head), body)
        chunk = await asyncio.wait_for(stdout.read(READ_SIZE), IDLE_SECONDS)
        if not chunk:
            return (*_parse_headers(buffer), b"")
        buffer += chunk


def _parse_headers(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "status":
            with contextlib.suppress(ValueError):
                status = int(value.strip().split(" ", 1)[0])
        elif key.strip():
            headers.append((key.strip(), value.strip()))
    return status, headers


@csrf_exempt
async def git_http_backend(
    request: HttpRequest, team_slug: str, name: str, rest: str
) -> HttpResponse | StreamingHttpResponse:
    access = await sync_to_async(authorize)(request, team_slug, name, rest)
    if access.status != 200:
        return _refusal(access)
    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_cgi_env(request, access, rest),
    )
    assert process.stdout is not None and process.stderr is not None
    feeder = asyncio.create_task(_feed(process, request))
    stderr_task = asyncio.create_task(process.stderr.read(64 * 1024))
    try:
        status, headers, first = await _read_headers(process.stdout)
    except BaseException:
        _kill(process)
        feeder.cancel()
        raise
    stdout = process.stdout

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            while chunk := await asyncio.wait_for(stdout.read(READ_SIZE), IDLE_SECONDS):
                yield chunk
            await feeder
            code = await process.wait()
            if code != 0:
                logger.warning(
                    "git http-backend exited %s for %s/%s: %s",
                    code,
                    team_slug,
                    name,
                    (await stderr_task).decode("utf-8", "replace")[-2000:],
                )
        finally:
            # The client went away (or we gave up): the git process must not linger.
            if process.returncode is None:
                _kill(process)
            feeder.cancel()
            stderr_task.cancel()

    response = StreamingHttpResponse(body(), status=status)
    for key, value in headers:
        response[key] = value
    return response


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()

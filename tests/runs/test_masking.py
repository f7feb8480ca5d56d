"""A run's secrets and its token are masked in what it prints, also hex-, base64- and
URL-encoded: `echo $(printf %s "$OZWEB_TOKEN" | base64 -w0)` shows no working token."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from apps.agents.services import agent_update
from apps.runs.creation import NewRun, run_create
from apps.runs.executor import execute_run
from apps.runs.masking import MASK, SecretMask, secret_forms
from apps.runs.models import RunStatus
from apps.threads.models import Message

TOKEN = "ozr_" + secrets.token_urlsafe(32)
PASSWORD = "p@ss w/rd+1&=?"  # characters that URL-encoding and base64 treat specially


def encodings(secret: str) -> list[str]:
    """The secret as programs print it."""
    raw = secret.encode()
    found = [
        secret,
        raw.hex(),
        raw.hex().upper(),
        binascii.b2a_base64(raw, newline=False).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(secret, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")),
        quote_plus(secret),
    ]
    # Inside a longer base64 stream, at each alignment, with bytes after it too.
    for before in (b"", b"a", b"ab", b"abc", b"abcd"):
        found.append(base64.b64encode(before + raw + b"\x00\xff\x10").decode())
        found.append(base64.urlsafe_b64encode(before + raw + b"\xfb").decode())
    return found


def leaks(text: str, secret: str) -> list[str]:
    """Runs of 12 characters of any form of the secret that are still in `text`."""
    return sorted(
        {
            form[i : i + 12]
            for form in secret_forms(secret)
            for i in range(len(form) - 11)
            if form[i : i + 12] in text
        }
    )


@pytest.mark.parametrize("secret", [TOKEN, PASSWORD, "sk-ant-" + secrets.token_hex(24)])
def test_every_encoding_is_masked_with_nothing_of_the_secret_left(secret):
    mask = SecretMask([secret, "another-secret-value"])

    for printed in encodings(secret):
        masked = mask.text(f"output: {printed} (done)")
        assert MASK in masked, printed
        assert leaks(masked, secret) == [], (printed, masked)
        assert masked.startswith("output: ") and masked.endswith(" (done)")


def test_the_whole_encoding_goes_not_just_its_core():
    mask = SecretMask([TOKEN])
    printed = base64.b64encode(TOKEN.encode()).decode()

    assert mask.text(f"[{printed}]") == f"[{MASK}]"
    assert mask.text(f"{TOKEN.encode().hex()} and {TOKEN}") == f"{MASK} and {MASK}"


def test_ordinary_text_and_short_values_are_left_alone():
    mask = SecretMask(["abc", "x" * 3, "secret-value-1"])

    text = "abc xxx 0123456789abcdef c2VjcmV0 nothing to see\x00here"
    assert mask.text(text) == text.replace("\x00", "\ufffd")
    assert SecretMask().text("a\x00b") == "a\ufffdb"
    assert mask.mask({"a": ["secret-value-1", 3, None]}) == {"a": [MASK, 3, None]}


def test_masking_stays_fast():
    mask = SecretMask([TOKEN, PASSWORD, *(secrets.token_urlsafe(30) for _ in range(4))])
    line = "tool output, nothing secret in it; " * 6
    block = os.urandom(7_500).hex()[:10_000]

    started = time.perf_counter()
    for _ in range(2_000):
        mask.text(line)
    for _ in range(200):
        mask.text(block)
    elapsed = time.perf_counter() - started

    # 2,000 lines and 2 MB of text: well under a second even on a busy 2-core machine.
    assert elapsed < 1.0, elapsed


PRINTER = """
import base64, os, urllib.parse
token, password = os.environ["OZWEB_TOKEN"], os.environ["API_PASSWORD"]
open("token.txt", "w").write(token)
for secret in (token, password):
    raw = secret.encode()
    print("hex", raw.hex(), raw.hex().upper(), flush=True)
    print("b64", base64.urlsafe_b64encode(raw).decode().rstrip("="), flush=True)
    print("stream", base64.b64encode(b"xy" + raw + b"tail").decode(), flush=True)
    print("url", urllib.parse.quote(secret, safe=""), flush=True)
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("local_sandbox")
def test_a_run_printing_its_token_encoded_stores_no_working_token(
    owner, thread, command_agent, program, settings
):
    shell = 'echo "shell $(printf %s "$OZWEB_TOKEN" | base64 -w0)"'
    agent = command_agent(f"{shell}; {program(PRINTER)}; exit 1")
    agent_update(actor=owner, agent=agent, secrets={"API_PASSWORD": PASSWORD})
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    [token_file] = Path(settings.OZWEB_AGENT_DATA_DIR).rglob("token.txt")
    token = token_file.read_text()
    stored = "\n".join(
        [run.error, run.stderr_tail]
        + [m.body for m in Message.objects.filter(thread=thread)]
        + [str(e.data) for e in run.events.all()]
    )
    assert leaks(stored, token) == [] and leaks(stored, PASSWORD) == []
    assert stored.count(MASK) >= 9
    assert "shell " + MASK in stored

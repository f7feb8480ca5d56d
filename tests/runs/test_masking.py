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
from apps.runs.masking import MASK, MIN_SPLIT, SecretMask, secret_forms
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


# -- split across lines, events and chunks ----------------------------------------------------


def shown(masked: list[str], form: str) -> int:
    """The longest run of `form`'s characters still in the masked strings (each on its own)."""
    return max(
        (
            length
            for length in range(len(form), 0, -1)
            for i in range(len(form) - length + 1)
            if any(form[i : i + length] in text for text in masked)
        ),
        default=0,
    )


@pytest.mark.parametrize("printed", encodings(TOKEN)[:10])
def test_a_secret_split_across_two_strings_is_masked_at_every_split_point(printed):
    for cut in range(1, len(printed)):
        mask = SecretMask([TOKEN])
        masked = [mask.mask(f"out: {printed[:cut]}"), mask.mask(f"{printed[cut:]} done")]

        assert shown(masked, printed) < MIN_SPLIT, (cut, masked)
        assert leaks("".join(masked), TOKEN) == []
        assert masked[0].startswith("out: ") and masked[1].endswith(" done")


def test_a_token_streamed_in_small_chunks_shows_at_most_its_first_characters():
    mask = SecretMask([TOKEN])
    events = [{"text": TOKEN[i : i + 3]} for i in range(0, len(TOKEN), 3)]

    masked = [mask.mask(event)["text"] for event in events]

    # The first chunk is shorter than MIN_SPLIT: it shows; from the second on, nothing does.
    assert masked[0] == TOKEN[:3] and set(masked[1:]) == {MASK}
    assert shown(masked, TOKEN) < MIN_SPLIT and leaks("".join(masked), TOKEN) == []


@pytest.mark.parametrize("width", [60, 76, 7])
def test_wrapped_encodings_are_masked_line_by_line_and_inside_one_string(width):
    stream = base64.b64encode(os.urandom(50) + TOKEN.encode() + os.urandom(50)).decode()
    hexed = TOKEN.encode().hex()
    for text in (stream, hexed):
        lines = [text[i : i + width] for i in range(0, len(text), width)]
        mask = SecretMask([TOKEN])
        by_line = [mask.mask(line) for line in lines]
        at_once = SecretMask([TOKEN]).text("\n".join(lines))

        assert leaks("".join(by_line), TOKEN) == [] and shown(by_line, hexed) < MIN_SPLIT
        assert leaks(at_once.replace("\n", ""), TOKEN) == [] and MASK in at_once


def test_ordinary_output_across_strings_is_left_alone():
    mask = SecretMask([TOKEN, PASSWORD])
    lines = ["ozr_ is how run tokens begin", "token: ozr_", "abc", "p@ss is a prefix", "done"]

    assert [mask.mask(line) for line in lines] == lines


SPLITTER = """
import base64, json, os
token = os.environ["OZWEB_TOKEN"]
open("token.txt", "w").write(token)
hexed = token.encode().hex()
for i in range(0, len(hexed), 30):  # as `xxd -p -c 15` prints it
    print(hexed[i : i + 30], flush=True)
wrapped = base64.encodebytes(b"x" * 40 + token.encode()).decode()  # wrapped at 76 columns
print(json.dumps({"type": "tool_result", "output": wrapped}), flush=True)
for i in range(0, len(token), 4):  # streamed in chunks, one text event each
    print(json.dumps({"type": "text", "text": token[i : i + 4]}), flush=True)
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("local_sandbox")
def test_a_run_splitting_its_token_across_lines_and_events_stores_no_working_token(
    thread, command_agent, program, settings
):
    run = run_create(NewRun(agent=command_agent(program(SPLITTER)), prompt="go", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    [token_file] = Path(settings.OZWEB_AGENT_DATA_DIR).rglob("token.txt")
    token = token_file.read_text()
    bodies = [m.body for m in Message.objects.filter(thread=thread).order_by("seq")]
    events = [str(e.data) for e in run.events.order_by("seq")]
    stored = "".join(bodies + events).replace("\\n", "").replace("\n", "")
    assert leaks(stored, token) == [], stored
    assert shown(bodies, token.encode().hex()) < MIN_SPLIT
    assert shown(bodies, token) < MIN_SPLIT

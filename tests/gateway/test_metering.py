"""Usage read from each provider's answers as they stream past, split anywhere."""

from __future__ import annotations

import json

import pytest

from apps.gateway.metering import ANTHROPIC, GEMINI, OPENAI, UsageMeter
from tests.support.model_server import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    Reply,
    anthropic_events,
    chat_chunks,
    gemini_response,
    responses_events,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "input": "hi"}


def fed(meter: UsageMeter, data: bytes, size: int) -> UsageMeter:
    for start in range(0, len(data), size):
        meter.feed(data[start : start + size])
    meter.finish()
    return meter


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_anthropic_stream(size):
    data = b"".join(anthropic_events(BODY, Reply.final_text("a few words here")))
    usage = fed(UsageMeter(kind=ANTHROPIC, streamed=True), data, size).usage
    assert (usage.input_tokens, usage.output_tokens, usage.model) == (
        INPUT_TOKENS, OUTPUT_TOKENS, "m",
    )  # fmt: skip


def test_anthropic_cache_counts_and_a_plain_body():
    start = {"type": "message_start", "message": {"model": "claude-x", "usage": {
        "input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20,
        "output_tokens": 1}}}  # fmt: skip
    delta = {"type": "message_delta", "usage": {"output_tokens": 44}}
    stream = b"".join(f"event: x\ndata: {json.dumps(e)}\n\n".encode() for e in (start, delta))
    usage = fed(UsageMeter(kind=ANTHROPIC, streamed=True), stream, 5).usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 44)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (100, 20)

    body = {
        "type": "message",
        "model": "claude-y",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    usage = fed(UsageMeter(kind=ANTHROPIC, streamed=False), json.dumps(body).encode(), 3).usage
    assert (usage.input_tokens, usage.output_tokens, usage.model) == (3, 4, "claude-y")


def test_openai_responses_and_chat_cached_input_is_taken_out_of_input():
    data = b"".join(responses_events(BODY, Reply.final_text("done")))
    usage = fed(UsageMeter(kind=OPENAI, streamed=True), data, 9).usage
    assert (usage.input_tokens, usage.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)

    chunks = list(chat_chunks(BODY, Reply.final_text("done")))
    chunks[-1]["usage"]["prompt_tokens_details"] = {"cached_tokens": 10}
    data = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"
    usage = fed(UsageMeter(kind=OPENAI, streamed=True), data, 13).usage
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (INPUT_TOKENS - 10, 10)


def test_gemini_sse_and_json_array():
    response = gemini_response(BODY, Reply.final_text("done"), model="gemini-x")
    sse = f"data: {json.dumps(response)}\r\n\r\n".encode()
    usage = fed(UsageMeter(kind=GEMINI, streamed=True), sse, 11).usage
    assert (usage.input_tokens, usage.output_tokens, usage.model) == (
        INPUT_TOKENS, OUTPUT_TOKENS, "gemini-x",
    )  # fmt: skip
    array = json.dumps([response, response]).encode()
    usage = fed(UsageMeter(kind=GEMINI, streamed=False), array, 50).usage
    assert usage.output_tokens == OUTPUT_TOKENS  # cumulative: the last chunk's


def test_an_answer_without_usage_reports_none():
    meter = fed(UsageMeter(kind=ANTHROPIC, streamed=True), b"data: [DONE]\n\nnot json", 4)
    assert not meter.usage.reported and meter.usage.input_tokens == 0

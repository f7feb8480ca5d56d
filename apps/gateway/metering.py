"""Reading the usage a provider reports in its answer, as the bytes stream past (pure Python).

    Anthropic Messages   message_start.message.usage, then message_delta.usage (cumulative)
    OpenAI Responses     response.completed (or .incomplete / .failed) → response.usage
    Chat Completions     the chunk with `usage` (stream_options.include_usage), or the body's
    Gemini               usageMetadata of the last chunk (cumulative), or of the body

Counts come out as Anthropic counts them: `input_tokens` without the cached input, which is
`cache_read_input_tokens` (OpenAI and Gemini include it in their input count). Only lines that
mention usage are parsed as JSON, so a long stream costs a substring search per chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ANTHROPIC = "anthropic"
OPENAI = "openai"
GEMINI = "gemini"

MAX_BODY_BYTES = 16 * 1024 * 1024  # a non-streamed answer kept for its usage, at most


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    model: str = ""
    reported: bool = False  # the answer carried usage at all


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


class UsageMeter:
    """Fed every chunk of one answer (`feed`), then `finish` once; `usage` holds the counts."""

    def __init__(self, *, kind: str, streamed: bool, model: str = "") -> None:
        self.kind = kind
        self.streamed = streamed
        self.usage = Usage(model=model)
        self._tail = b""
        self._body: list[bytes] = []
        self._body_size = 0

    def feed(self, chunk: bytes) -> None:
        if not self.streamed:
            if self._body_size <= MAX_BODY_BYTES:
                self._body.append(chunk)
                self._body_size += len(chunk)
            return
        data = self._tail + chunk if self._tail else chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._tail = data
            return
        self._tail = data[end + 1 :]
        # The objects that carry usage also carry the model (message_start, response.completed,
        # the usage chunk, each Gemini chunk).
        if b'"usage' not in data:
            return
        for line in data[:end].split(b"\n"):
            if line.startswith(b"data:") and b'"usage' in line:
                self._event(line[5:])

    def finish(self) -> Usage:
        if self.streamed:
            if self._tail.startswith(b"data:") and b'"usage' in self._tail:
                self._event(self._tail[5:])
            self._tail = b""
        elif self._body and self._body_size <= MAX_BODY_BYTES:
            try:
                body = json.loads(b"".join(self._body))
            except ValueError:
                body = None
            # streamGenerateContent without alt=sse answers a JSON array of chunks.
            for item in body if isinstance(body, list) else [body]:
                if isinstance(item, dict):
                    self._object(item, whole=True)
        return self.usage

    def _event(self, payload: bytes) -> None:
        try:
            obj = json.loads(payload)
        except ValueError:
            return  # "[DONE]" or a line we cannot read: not usage
        if isinstance(obj, dict):
            self._object(obj, whole=False)

    def _object(self, obj: dict[str, Any], *, whole: bool) -> None:
        if self.kind == ANTHROPIC:
            self._anthropic(obj, whole=whole)
        elif self.kind == GEMINI:
            self._gemini(obj)
        else:
            self._openai(obj)

    def _set_model(self, value: Any) -> None:
        if isinstance(value, str) and value:
            self.usage.model = value[:200]

    def _anthropic(self, obj: dict[str, Any], *, whole: bool) -> None:
        kind = obj.get("type")
        if kind == "message_start":
            message = obj.get("message") or {}
            self._set_model(message.get("model"))
            self._anthropic_usage(message.get("usage"))
        elif kind == "message_delta" or (whole and kind == "message"):
            if whole:
                self._set_model(obj.get("model"))
            self._anthropic_usage(obj.get("usage"))

    def _anthropic_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        u = self.usage
        u.reported = True
        # message_delta repeats the counts so far (cumulative): the latest one stands.
        if "input_tokens" in usage and usage["input_tokens"] is not None:
            u.input_tokens = _int(usage["input_tokens"])
        if usage.get("output_tokens") is not None:
            u.output_tokens = _int(usage["output_tokens"])
        if usage.get("cache_read_input_tokens") is not None:
            u.cache_read_input_tokens = _int(usage["cache_read_input_tokens"])
        if usage.get("cache_creation_input_tokens") is not None:
            u.cache_creation_input_tokens = _int(usage["cache_creation_input_tokens"])

    def _openai(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if isinstance(kind, str) and kind.startswith("response."):  # Responses API events
            response = obj.get("response")
            if isinstance(response, dict):
                self._set_model(response.get("model"))
                if kind in ("response.completed", "response.incomplete", "response.failed"):
                    self._openai_usage(response.get("usage"))
            return
        if obj.get("object") == "response":  # a Responses body, not streamed
            self._set_model(obj.get("model"))
            self._openai_usage(obj.get("usage"))
            return
        self._set_model(obj.get("model"))  # Chat Completions: body or chunk
        self._openai_usage(obj.get("usage"))

    def _openai_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        u = self.usage
        u.reported = True
        if "input_tokens" in usage:  # Responses
            prompt = _int(usage.get("input_tokens"))
            cached = _int((usage.get("input_tokens_details") or {}).get("cached_tokens"))
            u.output_tokens = _int(usage.get("output_tokens"))
        else:  # Chat Completions
            prompt = _int(usage.get("prompt_tokens"))
            cached = _int((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
            u.output_tokens = _int(usage.get("completion_tokens"))
        u.cache_read_input_tokens = min(cached, prompt)
        u.input_tokens = prompt - u.cache_read_input_tokens

    def _gemini(self, obj: dict[str, Any]) -> None:
        self._set_model(obj.get("modelVersion"))
        usage = obj.get("usageMetadata")
        if not isinstance(usage, dict):
            return
        u = self.usage
        u.reported = True
        prompt = _int(usage.get("promptTokenCount"))
        cached = min(_int(usage.get("cachedContentTokenCount")), prompt)
        u.input_tokens = prompt - cached
        u.cache_read_input_tokens = cached
        u.output_tokens = _int(usage.get("candidatesTokenCount")) + _int(
            usage.get("thoughtsTokenCount")
        )

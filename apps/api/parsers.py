"""The REST API's JSON parser: DRF's, refusing bodies nested deeper than
settings.OZWEB_JSON_MAX_DEPTH with a 400 before they are parsed (apps.core.json_depth)."""

from __future__ import annotations

import codecs
import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.core.json_depth import JSONTooDeep, json_check_depth


class DepthLimitedJSONParser(JSONParser):
    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            # UTF-8 (nearly every body) is checked as it came; another charset once decoded.
            text = body if codecs.lookup(encoding).name == "utf-8" else body.decode(encoding)
        except (LookupError, UnicodeError):
            text = b""  # not text in that charset: DRF's parser refuses it with its own 400
        try:
            json_check_depth(text)
        except JSONTooDeep as exc:
            raise ParseError(str(exc), code="too_deep") from None
        return super().parse(io.BytesIO(body), media_type, parser_context)

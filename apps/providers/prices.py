"""What model tokens cost: a built-in table per model, overridden per provider (Provider.prices).

Prices are US dollars per million tokens, by kind of token: `input` (not cached), `output`,
`cache_read` and `cache_write` (Anthropic's cache creation). A model is matched by its longest
listed prefix, so dated names ("claude-sonnet-4-5-20250929") find their family. The defaults
are the providers' list prices when this table was written; a team with other terms sets its
own per provider. A model found nowhere costs nothing (its tokens are still counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.core.errors import ServiceError

PRICE_KINDS = ("input", "output", "cache_read", "cache_write")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)
    cache_read: Decimal = Decimal(0)
    cache_write: Decimal = Decimal(0)

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Price:
        return cls(**{kind: Decimal(str(entry.get(kind) or 0)) for kind in PRICE_KINDS})

    def cost_usd(
        self, *, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> Decimal:
        total = (
            self.input * input_tokens
            + self.output * output_tokens
            + self.cache_read * cache_read
            + self.cache_write * cache_write
        )
        return total / MILLION


def _p(input: float, output: float, cache_read: float, cache_write: float = 0) -> dict[str, float]:  # noqa: A002
    return {"input": input, "output": output, "cache_read": cache_read, "cache_write": cache_write}


# USD per million tokens (list prices, 2025-2026).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    # Anthropic: cache writes (5-minute) at 1.25x input, reads at 0.1x.
    "claude-opus-4-5": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-1": _p(15, 75, 1.5, 18.75),
    "claude-opus-4": _p(15, 75, 1.5, 18.75),
    "claude-sonnet-4": _p(3, 15, 0.3, 3.75),
    "claude-3-7-sonnet": _p(3, 15, 0.3, 3.75),
    "claude-haiku-4-5": _p(1, 5, 0.1, 1.25),
    "claude-3-5-haiku": _p(0.8, 4, 0.08, 1),
    # OpenAI: cached input at the listed cached rate; no cache-write charge.
    "gpt-5-nano": _p(0.05, 0.4, 0.005),
    "gpt-5-mini": _p(0.25, 2, 0.025),
    "gpt-5": _p(1.25, 10, 0.125),
    "gpt-4.1-nano": _p(0.1, 0.4, 0.025),
    "gpt-4.1-mini": _p(0.4, 1.6, 0.1),
    "gpt-4.1": _p(2, 8, 0.5),
    "gpt-4o-mini": _p(0.15, 0.6, 0.075),
    "gpt-4o": _p(2.5, 10, 1.25),
    "o4-mini": _p(1.1, 4.4, 0.275),
    "o3": _p(2, 8, 0.5),
    # Google (prompts up to 200k tokens).
    "gemini-2.5-pro": _p(1.25, 10, 0.31),
    "gemini-2.5-flash-lite": _p(0.1, 0.4, 0.025),
    "gemini-2.5-flash": _p(0.3, 2.5, 0.075),
    "gemini-2.0-flash": _p(0.1, 0.4, 0.025),
}


def _longest_prefix(table: Mapping[str, Any], model: str) -> Any:
    best = max((name for name in table if model.startswith(name)), key=len, default=None)
    return table[best] if best is not None else None


def price_for(*, model: str, overrides: Mapping[str, Any] | None = None) -> Price:
    """The price of `model`: the provider's own entry (exact, then by prefix), else the
    built-in one, else free."""
    model = model.strip()
    for table in (overrides or {}, DEFAULT_PRICES):
        entry = table.get(model) or _longest_prefix(table, model)
        if entry is not None:
            return Price.of(entry)
    return Price()


def prices_clean(value: Any) -> dict[str, dict[str, float]]:
    """A provider's `prices` input, checked: {"<model>": {"input": 3, "output": 15, ...}}."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ServiceError(
            'Prices are an object by model: {"<model>": {"input": 3, "output": 15}}.',
            field="prices",
        )
    cleaned: dict[str, dict[str, float]] = {}
    for model, entry in value.items():
        name = str(model).strip()
        if not name or len(name) > 200:
            raise ServiceError("A model name is 1-200 characters.", field="prices")
        if not isinstance(entry, dict) or not entry:
            raise ServiceError(f"Prices of {name!r}: an object of {PRICE_KINDS}.", field="prices")
        unknown = set(entry) - set(PRICE_KINDS)
        if unknown:
            raise ServiceError(
                f"Prices of {name!r}: unknown {', '.join(sorted(unknown))}; "
                f"use {', '.join(PRICE_KINDS)} (USD per million tokens).",
                field="prices",
            )
        prices: dict[str, float] = {}
        for kind, amount in entry.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float | str):
                raise ServiceError(f"Price {name}.{kind} is not a number.", field="prices")
            try:
                number = float(amount)
            except ValueError:
                raise ServiceError(
                    f"Price {name}.{kind} is not a number.", field="prices"
                ) from None
            if not 0 <= number <= 1_000_000:
                raise ServiceError(f"Price {name}.{kind} is out of range.", field="prices")
            prices[kind] = number
        cleaned[name] = prices
    if len(cleaned) > 500:
        raise ServiceError("At most 500 models have their own prices.", field="prices")
    return cleaned

"""The spend chart: daily cost as a server-rendered SVG (no script: CSP default-src 'self')."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.gateway.selectors import team_usage
from apps.teams.models import Team

WIDTH, HEIGHT, PAD = 600, 140, 24


@dataclass(frozen=True)
class DaySpend:
    day: date
    cost_usd: Decimal
    requests: int


def daily_spend(*, team: Team, days: int = 30) -> list[DaySpend]:
    """The team's cost per UTC day, the last `days` days up to today (days without any: 0)."""
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    rows = {row.key: row for row in team_usage(team=team, since=since, group_by="day")}
    spend = []
    for n in range(days):
        day = first + timedelta(days=n)
        row = rows.get(day.isoformat())
        spend.append(DaySpend(day, row.cost_usd if row else Decimal(0), row.requests if row else 0))
    return spend


def spend_chart_svg(days: list[DaySpend]) -> SafeString:
    """Bars of daily cost with a title per bar (hover) and the peak on the axis."""
    peak = max((d.cost_usd for d in days), default=Decimal(0))
    scale = (HEIGHT - PAD) / float(peak) if peak else 0.0
    step = (WIDTH - PAD) / max(len(days), 1)
    # Numbers formatted first: format_html escapes its arguments into strings.
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="spend-bar">'
        "<title>{}: ${}, {} requests</title></rect>",
        (
            (
                f"{PAD + i * step + 1:.1f}",
                f"{HEIGHT - float(d.cost_usd) * scale:.1f}",
                f"{max(step - 2, 1):.1f}",
                f"{float(d.cost_usd) * scale:.1f}",
                d.day.isoformat(),
                f"{d.cost_usd:.4f}",
                d.requests,
            )
            for i, d in enumerate(days)
        ),
    )
    first = days[0].day.isoformat() if days else ""
    last = days[-1].day.isoformat() if days else ""
    return format_html(
        '<svg class="spend-chart" viewBox="0 0 {} {}" role="img" '
        'aria-label="Spend per day, {} to {}">'
        '<text x="0" y="12" class="axis">${}</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis-line"/>{}'
        '<text x="{}" y="{}" class="axis">{}</text>'
        '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text></svg>',
        WIDTH, HEIGHT + 16, first, last, f"{peak:.2f}",
        PAD, HEIGHT, WIDTH, HEIGHT, bars,
        PAD, HEIGHT + 14, first,
        WIDTH, HEIGHT + 14, last,
    )  # fmt: skip

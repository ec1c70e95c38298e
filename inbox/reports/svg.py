"""Charts as small, hand-written SVG from a time series (`inbox.reports.series.timeseries`): one line per
series, the previous period dashed beside a single series, every point addressable (`data-series`,
`data-start`, `data-value`, `data-previous`) and titled for a screen reader. Pure: data in, text out.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 28
COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")
PREVIOUS = "#9ca3af"


def _number(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def chart(data: dict[str, Any], *, title: str | None = None) -> str:
    """The SVG document of a time series: lines of the current period, the previous one dashed."""
    series = data["series"][: len(COLORS)]
    count = max((len(s["points"]) for s in series), default=0)
    values = [p[key] for s in series for p in s["points"] for key in ("value", "previous") if p[key] is not None]
    top = max([*values, 1])
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (inner_w * index / (count - 1) if count > 1 else inner_w / 2)

    def y(value: float) -> float:
        return float(TOP + inner_h - inner_h * value / top)

    name = title or f"{data['metric']} per {data['bucket']}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart"'
        f' data-metric="{escape(data["metric"])}" data-bucket="{escape(data["bucket"])}" data-points="{count}">',
        f"<title>{escape(name)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" y2="{TOP + inner_h}" stroke="#d1d5db"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" data-axis="max">{_number(top)}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + inner_h}" text-anchor="end" font-size="11">0</text>',
    ]
    if count:
        first, last = series[0]["points"][0]["start"][:10], series[0]["points"][-1]["start"][:10]
        out.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11">{escape(first)}</text>')
        out.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="11">{escape(last)}</text>')
    if len(series) == 1:
        previous = [(i, p["previous"]) for i, p in enumerate(series[0]["points"]) if p["previous"] is not None]
        if previous:
            line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in previous)
            out.append(
                f'<polyline class="previous" data-series="previous" points="{line}" fill="none"'
                f' stroke="{PREVIOUS}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
    for number, item in enumerate(series):
        color = COLORS[number]
        present = [(i, p) for i, p in enumerate(item["points"]) if p["value"] is not None]
        line = " ".join(f"{x(i):.1f},{y(p['value']):.1f}" for i, p in present)
        out.append(
            f'<polyline class="current" data-series="{number}" data-name="{escape(str(item["name"]))}"'
            f' points="{line}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        for i, p in present:
            out.append(
                f'<circle cx="{x(i):.1f}" cy="{y(p["value"]):.1f}" r="3" fill="{color}" data-series="{number}"'
                f' data-start="{escape(p["start"])}" data-value="{_number(p["value"])}"'
                f' data-previous="{_number(p["previous"])}"><title>{escape(str(item["name"]))} · {escape(p["start"][:10])}:'
                f" {_number(p['value'])} (previous {_number(p['previous']) or '–'})</title></circle>"
            )
    out.append("</svg>")
    return "\n".join(out)

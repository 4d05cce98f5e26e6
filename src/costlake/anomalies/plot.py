"""`costlake plot`: a chart of daily cost with the expected band shaded and anomalies marked.

Writes a PNG and an HTML page (the same chart as inline SVG, plus the anomaly table) so it can be
attached to a ticket or opened in a browser. Uses matplotlib's non-interactive Agg backend.

Names (the service, a contributor's value) come from billing files: the chart shows them through the
name policy (`costlake.text.names`), so one that reads like prose or instructions appears as its label,
e.g. `service 3f2a9c (name withheld)`; the numbers are the stored ones.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from costlake.anomalies.analyse import ServiceSeries, analyse
from costlake.anomalies.detect import Params, detect
from costlake.errors import InputError
from costlake.text.names import is_label, shown_value

MARKERS = {"up": ("^", "#c0392b"), "down": ("v", "#2471a3"), "shift": ("D", "#7d3c98")}


@dataclass
class Chart:
    title: str
    days: list[dt.date]
    actual: list[Decimal]
    expected: list[Decimal | None]
    low: list[Decimal | None]
    high: list[Decimal | None]
    anomalies: list[dict[str, Any]]


def chart_for(series: list[ServiceSeries], account: str, service: str | None, params: Params) -> Chart:
    """One account's daily cost (one service, or all services summed) with its band and anomalies."""
    mine = [s for s in series if s.account_id == account and (service is None or s.service_name == service)]
    if not mine:
        what = f"service {service!r} of account {account!r}" if service else f"account {account!r}"
        raise InputError(f"no published cost for {what}; check the id with `costlake query`")
    start, length = mine[0].start, len(mine[0].total)
    total = [sum((s.total[i] for s in mine), Decimal(0)) for i in range(length)]
    bands = detect(total, params).bands
    anomalies = []
    for s in mine:
        for f in analyse(s, params):
            anomalies.append(
                {
                    "day": s.day(f.index),
                    "service": shown_value("service_name", s.service_name),
                    "kind": f.kind,
                    "direction": f.direction,
                    "actual": f.actual,
                    "expected": f.band.expected,
                    "impact": f.impact,
                    "top": _top(f.contributors[0].dimension, f.contributors[0].value)
                    if f.contributors
                    else "",
                }
            )
    anomalies.sort(key=lambda a: (a["day"], a["service"]))
    days = [start + dt.timedelta(days=i) for i in range(length)]
    shown = shown_value("service_name", service) if service else "all services"
    title = f"account {shown_value('account_id', account)} · {shown}"
    return Chart(
        title,
        days,
        total,
        [b.expected if b else None for b in bands],
        [b.low if b else None for b in bands],
        [b.high if b else None for b in bands],
        anomalies,
    )


def _top(dimension: str, value: str) -> str:
    """The top contributor as `dimension=value`, or the label of its value when that was withheld."""
    shown = str(shown_value(dimension, value))
    return shown if is_label(shown) else f"{dimension}={shown}"


def _figure(chart: Chart) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    days: list[Any] = list(chart.days)
    known = [i for i, e in enumerate(chart.expected) if e is not None]
    ax.fill_between(
        [days[i] for i in known],
        [float(chart.low[i] or 0) for i in known],
        [float(chart.high[i] or 0) for i in known],
        color="#aed6f1",
        alpha=0.5,
        label="expected band",
        step="mid",
    )
    ax.plot(
        [days[i] for i in known],
        [float(chart.expected[i] or 0) for i in known],
        color="#5dade2",
        linewidth=1,
        linestyle="--",
        label="expected",
    )
    ax.plot(days, [float(v) for v in chart.actual], color="#1c2833", linewidth=1.4, label="actual")
    by_day = {d: v for d, v in zip(chart.days, chart.actual, strict=True)}
    for direction, (marker, colour) in MARKERS.items():
        hits = [a for a in chart.anomalies if a["direction"] == direction and a["day"] in by_day]
        if hits:
            ax.scatter(
                [a["day"] for a in hits],
                [float(by_day[a["day"]]) for a in hits],
                marker=marker,
                color=colour,
                s=60,
                zorder=3,
                label=f"anomaly ({direction})",
            )
    ax.set_title(chart.title)
    ax.set_ylabel("cost (USD)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def write_chart(chart: Chart, png: Path) -> tuple[Path, Path]:
    """Write PNG and HTML (same stem); return both paths."""
    import matplotlib.pyplot as plt

    png.parent.mkdir(parents=True, exist_ok=True)
    fig = _figure(chart)
    # Fixed metadata: the same data gives the same bytes.
    fig.savefig(png, format="png", metadata={"Software": None})
    svg = io.StringIO()
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    page = png.with_suffix(".html")
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                a["day"],
                a["service"],
                a["kind"],
                f"{a['actual']:.2f}",
                f"{a['expected']:.2f}",
                f"{a['impact']:+.2f}",
                a["top"],
            )
        )
        + "</tr>"
        for a in chart.anomalies
    )
    svg_text = svg.getvalue()
    svg_text = svg_text[svg_text.index("<svg") :]
    page.write_text(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(chart.title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>\n"
        f'<h1>{html.escape(chart.title)}</h1>\n<figure id="chart">{svg_text}</figure>\n'
        f'<h2>Anomalies ({len(chart.anomalies)})</h2>\n<table id="anomalies"><thead><tr><th>day</th>'
        "<th>service</th><th>kind</th><th>actual USD</th><th>expected USD</th><th>impact USD</th>"
        f"<th>top contributor</th></tr></thead><tbody>\n{rows}\n</tbody></table>\n</body></html>\n"
    )
    return png, page

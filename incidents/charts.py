"""Geometry for the metrics page's server-side SVG: stacked weekly bars. Plain numbers and
label strings; the template renders them as auto-escaped attributes and <title> text."""

from __future__ import annotations

WIDTH = 720
HEIGHT = 200
PAD_LEFT = 36
PAD_BOTTOM = 22
PAD_TOP = 8

# Colour-blind-safe palette (Okabe-Ito), used as SVG fill presentation attributes.
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
]


def stacked_bars(weeks: list, series: dict[str, list[int]], labels: dict[str, str]) -> dict:
    """weeks: week start dates; series: key -> counts per week. Returns segments, legend,
    axis ticks and the y scale."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(weeks))]
    top = max(totals) if totals and max(totals) > 0 else 1
    plot_w = WIDTH - PAD_LEFT
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(weeks), 1)
    colours = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(series)}
    segments = []
    for i, week in enumerate(weeks):
        y = PAD_TOP + plot_h
        for key, values in series.items():
            count = values[i]
            if not count:
                continue
            h = count / top * plot_h
            y -= h
            segments.append(
                {
                    "x": round(PAD_LEFT + i * slot + slot * 0.15, 2),
                    "y": round(y, 2),
                    "w": round(max(slot * 0.7, 1), 2),
                    "h": round(h, 2),
                    "fill": colours[key],
                    "title": f"week of {week:%Y-%m-%d}: {labels.get(key, key)} {count}",
                }
            )
    ticks = [
        {"x": round(PAD_LEFT + i * slot + slot / 2, 2), "label": f"{week:%m-%d}"}
        for i, week in enumerate(weeks)
        if i % 2 == 0
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "segments": segments,
        "legend": [
            {"key": key, "label": labels.get(key, key), "fill": colours[key], "total": sum(v)}
            for key, v in series.items()
        ],
        "ticks": ticks,
        "top": top,
        "axis_y": PAD_TOP + plot_h,
        "label_y": HEIGHT - 6,
        "pad_left": PAD_LEFT,
        "empty": not segments,
    }


def minutes_label(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 90:
        return f"{value:.0f} min"
    if value < 48 * 60:
        return f"{value / 60:.1f} h"
    return f"{value / 1440:.1f} d"

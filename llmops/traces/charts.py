"""Geometry for the dashboard's server-side SVG charts: plain numbers and label strings that
templates render as auto-escaped attributes and <title> text (no markup built here)."""

from __future__ import annotations

from collections.abc import Callable

WIDTH = 720
HEIGHT = 160
PAD_LEFT = 64
PAD_BOTTOM = 20
PAD_TOP = 8


def _fmt_default(value) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def bar_chart(
    points: list[tuple[str, float | None]],
    *,
    fmt: Callable = _fmt_default,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> dict:
    """points: (label, value). Returns bars with x, y, w, h and a title per bar."""
    values = [v or 0 for _, v in points]
    top = max(values) if values and max(values) > 0 else 1
    plot_w = width - PAD_LEFT
    plot_h = height - PAD_BOTTOM - PAD_TOP
    n = max(len(points), 1)
    slot = plot_w / n
    bars = []
    for i, (label, value) in enumerate(points):
        h = (value or 0) / top * plot_h
        bars.append(
            {
                "x": round(PAD_LEFT + i * slot + slot * 0.1, 2),
                "y": round(PAD_TOP + plot_h - h, 2),
                "w": round(max(slot * 0.8, 1), 2),
                "h": round(h, 2),
                "title": f"{label}: {fmt(value) if value is not None else 'no data'}",
            }
        )
    return _frame(points, bars=bars, top=top, fmt=fmt, width=width, height=height)


def line_chart(
    points: list[tuple[str, float | None]],
    *,
    fmt: Callable = _fmt_default,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> dict:
    """points: (label, value or None for a gap). Returns dots and a polyline points string."""
    present = [v for _, v in points if v is not None]
    top = max(present) if present and max(present) > 0 else 1
    plot_w = width - PAD_LEFT
    plot_h = height - PAD_BOTTOM - PAD_TOP
    n = max(len(points), 1)
    slot = plot_w / n
    dots = []
    for i, (label, value) in enumerate(points):
        if value is None:
            continue
        dots.append(
            {
                "x": round(PAD_LEFT + i * slot + slot / 2, 2),
                "y": round(PAD_TOP + plot_h - value / top * plot_h, 2),
                "title": f"{label}: {fmt(value)}",
            }
        )
    polyline = " ".join(f"{d['x']},{d['y']}" for d in dots)
    return _frame(
        points, dots=dots, polyline=polyline, top=top, fmt=fmt, width=width, height=height
    )


def _frame(points, *, top, fmt, width, height, **parts) -> dict:
    n = len(points)
    every = max(1, n // 6)
    plot_w = width - PAD_LEFT
    slot = plot_w / max(n, 1)
    ticks = [
        {"x": round(PAD_LEFT + i * slot + slot / 2, 2), "label": label}
        for i, (label, _) in enumerate(points)
        if i % every == 0
    ]
    return {
        "width": width,
        "height": height,
        "base_y": height - PAD_BOTTOM,
        "top_y": PAD_TOP,
        "left": PAD_LEFT,
        "label_y": height - 5,
        "top_label": fmt(top),
        "ticks": ticks,
        "empty": not any(v for _, v in points),
        **parts,
    }

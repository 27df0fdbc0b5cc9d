"""Production pages: the dashboard (from rollups), the generations list and a generation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.generic import TemplateView

from llmops.tenancy.mixins import OrgMixin

from . import charts, selectors


def _money(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value and abs(value) < 0.01:
        return f"${value:.5f}"
    return f"${value:,.2f}"


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _ms(value) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _parse_pair(text: str) -> tuple[str, int] | None:
    name, _, number = (text or "").rpartition(":")
    if not name or not _is_number(number):
        return None
    return name, int(number)


def _first_url(candidates) -> str | None:
    for name, kwargs in candidates:
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            continue
    return None


def prompt_version_url(org, name: str | None, number: int | None) -> str | None:
    """The prompt version page when the prompts app serves one (traces does not import it)."""
    if not name or number is None:
        return None
    base = {"org_slug": org.slug}
    return _first_url(
        [
            ("prompts:version", {**base, "name": name, "number": number}),
            ("prompts:version_detail", {**base, "name": name, "number": number}),
            ("prompts:version", {**base, "prompt_name": name, "number": number}),
        ]
    )


def model_url(org, model_version) -> str | None:
    if model_version is None:
        return None
    base = {"org_slug": org.slug}
    return _first_url(
        [
            ("catalog:detail", {**base, "pk": model_version.pk}),
            ("catalog:model", {**base, "pk": model_version.pk}),
            ("catalog:detail", {**base, "model_pk": model_version.pk}),
            ("catalog:model_detail", {**base, "pk": model_version.pk}),
        ]
    )


class DashboardView(OrgMixin, TemplateView):
    template_name = "traces/dashboard.html"
    action = "generation.view"

    def get(self, request, *args, **kwargs):
        if request.GET.get("panel") == "spenders":
            # The top-spenders panel (htmx loads it after the figures; a link without JS).
            window = request.GET.get("window", "7d")
            if window not in selectors.WINDOWS:
                window = "7d"
            since = selectors.window_since(window, timezone.now())
            ctx = self.get_base_context(
                window=window, spenders=selectors.top_spenders(org=self.org, since=since)
            )
            return self.render_to_response(ctx, template="traces/dashboard.html#top-spenders")
        return super().get(request, *args, **kwargs)

    def get_base_context(self, **kwargs):
        return super().get_context_data(**kwargs)

    def render_to_response(self, context, template=None, **kwargs):
        if template is not None:
            from django.shortcuts import render

            return render(self.request, template, context)
        return super().render_to_response(context, **kwargs)

    def get_context_data(self, **kwargs):
        window = self.request.GET.get("window", "7d")
        if window not in selectors.WINDOWS:
            window = "7d"
        now = timezone.now()
        data = selectors.dashboard(
            org=self.org,
            window=window,
            now=now,
            with_spenders=bool(self.request.GET.get("spenders")),
        )
        fmt_label = "%H:%M" if data["step"] == "hour" else "%b %d"
        series = data["series"]
        labels = [s["start"].strftime(fmt_label) for s in series]
        volume = charts.bar_chart(list(zip(labels, [s["count"] for s in series], strict=True)))
        errors = charts.line_chart(
            list(zip(labels, [s["error_rate"] for s in series], strict=True)), fmt=_pct
        )
        latency = charts.line_chart(
            list(zip(labels, [s["p95_ms"] for s in series], strict=True)), fmt=_ms
        )
        cost = charts.bar_chart(
            list(zip(labels, [float(s["cost_total"]) for s in series], strict=True)), fmt=_money
        )
        versions = [s["key"] for s in data["by_version"]]
        a = _parse_pair(self.request.GET.get("a", ""))
        b = _parse_pair(self.request.GET.get("b", ""))
        if a is None and b is None and len(versions) >= 2:
            # Default comparison: the two newest versions of the busiest prompt.
            busiest = versions[0][0]
            same = sorted((v for v in versions if v[0] == busiest), key=lambda v: -v[1])
            if len(same) >= 2:
                a, b = same[1], same[0]
        compare = None
        if a and b:
            since = data["since"]
            compare = {
                "a": {
                    "key": a,
                    **selectors.rollup_summary(
                        org=self.org, since=since, prompt_name=a[0], prompt_version=a[1]
                    ),
                },
                "b": {
                    "key": b,
                    **selectors.rollup_summary(
                        org=self.org, since=since, prompt_name=b[0], prompt_version=b[1]
                    ),
                },
            }
            compare["rows"] = _compare_rows(compare["a"], compare["b"])
        for s in data["by_version"]:
            s["url"] = prompt_version_url(self.org, *s["key"])
        for s in data["by_version"] + data["by_model"]:
            s["f"] = _figures(s)
        return super().get_context_data(
            d=data,
            window=window,
            windows=list(selectors.WINDOWS),
            volume_chart=volume,
            error_chart=errors,
            latency_chart=latency,
            cost_chart=cost,
            versions=[{"value": f"{n}:{v}", "label": f"{n} v{v}"} for n, v in versions],
            compare=compare,
            sel_a=f"{a[0]}:{a[1]}" if a else "",
            sel_b=f"{b[0]}:{b[1]}" if b else "",
            kpis=_kpis(data["summary"]),
            spenders=data["top_spenders"],
            **kwargs,
        )


def _kpis(s: dict) -> list[dict]:
    return [
        {"label": "Requests", "value": f"{s['count']:,}"},
        {"label": "Error rate", "value": _pct(s["error_rate"])},
        {"label": "Latency P50", "value": _ms(s["p50_ms"])},
        {"label": "Latency P95", "value": _ms(s["p95_ms"])},
        {"label": "Cost per request", "value": _money(s["cost_per_request"])},
        {"label": "Cost total", "value": _money(s["cost_total"])},
    ]


def _figures(s: dict) -> dict:
    return {
        "count": f"{s['count']:,}",
        "error_rate": _pct(s["error_rate"]),
        "p50": _ms(s["p50_ms"]),
        "p95": _ms(s["p95_ms"]),
        "cost_per_request": _money(s["cost_per_request"]),
        "cost_total": _money(s["cost_total"]),
    }


def _compare_rows(a: dict, b: dict) -> list[dict]:
    def delta(x, y, fmt):
        if x is None or y is None:
            return "—"
        diff = float(y) - float(x)
        sign = "+" if diff > 0 else ("−" if diff < 0 else "")
        return f"{sign}{fmt(abs(diff))}"

    spec = [
        ("Requests", "count", lambda v: f"{v:,.0f}"),
        ("Error rate", "error_rate", _pct),
        ("Latency P50", "p50_ms", _ms),
        ("Latency P95", "p95_ms", _ms),
        ("Latency P99", "p99_ms", _ms),
        ("Cost per request", "cost_per_request", _money),
        ("Cost total", "cost_total", _money),
    ]
    return [
        {
            "label": label,
            "a": fmt(a[key]) if a[key] is not None else "—",
            "b": fmt(b[key]) if b[key] is not None else "—",
            "delta": delta(a[key], b[key], fmt),
        }
        for label, key, fmt in spec
    ]


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def _day(text: str, *, end: bool = False) -> datetime | None:
    try:
        d = parse_date(text or "")
    except ValueError:  # well formed but not a date (2026-13-45): no filter, like bad text
        return None
    if d is None:
        return None
    if end:
        d = d + timedelta(days=1)
    return datetime.combine(d, time.min, tzinfo=UTC)


class GenerationListView(OrgMixin, TemplateView):
    template_name = "traces/generations.html"
    action = "generation.view"
    page_size = 50

    def get_context_data(self, **kwargs):
        g = self.request.GET
        version = g.get("version", "").strip()
        f = {
            "prompt": g.get("prompt", "").strip(),
            "version": version if _is_number(version) else "",
            "model": g.get("model", "").strip(),
            "status": g.get("status", "") if g.get("status") in ("ok", "error") else "",
            "tag": g.get("tag", "").strip(),
            "since": g.get("since", ""),
            "until": g.get("until", ""),
            "q": g.get("q", "").strip(),
            "user": g.get("user", "").strip(),
        }
        qs = selectors.generation_list(
            org=self.org,
            prompt_name=f["prompt"] or None,
            prompt_version=int(f["version"]) if f["version"] else None,
            model_id=f["model"] or None,
            status=f["status"] or None,
            tag=f["tag"] or None,
            since=_day(f["since"]),
            until=_day(f["until"], end=True),
            q=f["q"] or None,
            user_ref=f["user"] or None,
        )
        rows, next_cursor = selectors.generation_page(
            qs, cursor=g.get("cursor") or None, limit=self.page_size
        )
        params = {k: v for k, v in f.items() if v}
        choices = selectors.filter_choices(
            org=self.org, since=timezone.now() - selectors.WINDOWS["30d"]
        )
        from urllib.parse import urlencode

        return super().get_context_data(
            rows=rows,
            f=f,
            choices=choices,
            next_url=f"?{urlencode({**params, 'cursor': next_cursor})}" if next_cursor else None,
            first_url=f"?{urlencode(params)}" if g.get("cursor") else None,
            filtered=bool(params),
            **kwargs,
        )


def _messages(value) -> list[dict] | None:
    """Chat-style input ([{"role", "content"}, ...]) as messages, else None."""
    if not isinstance(value, list) or not value:
        return None
    out = []
    for m in value:
        if not isinstance(m, dict) or "role" not in m:
            return None
        content = m.get("content")
        if not isinstance(content, str):
            content = json.dumps(content, indent=2, ensure_ascii=False)
        out.append({"role": str(m["role"]), "content": content})
    return out


def _pretty(value) -> str:
    if value is None or value == {} or value == []:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


class GenerationDetailView(OrgMixin, TemplateView):
    template_name = "traces/generation.html"
    action = "generation.view"

    def get_context_data(self, **kwargs):
        gen = selectors.generation_get(org=self.org, pk=self.kwargs["pk"])
        render_as = "markdown" if self.request.GET.get("render") == "markdown" else "text"
        output = gen.output
        if gen.output_is_json:
            try:
                output = json.dumps(json.loads(gen.output), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return super().get_context_data(
            g=gen,
            render_as=render_as,
            output=output,
            messages_in=_messages(gen.input),
            input_pretty=_pretty(gen.input),
            context_pretty=_pretty(gen.context),
            tool_calls_pretty=_pretty(gen.tool_calls),
            metadata_pretty=_pretty(gen.metadata),
            prompt_url=prompt_version_url(self.org, gen.prompt_name, gen.prompt_version),
            model_url=model_url(self.org, gen.model_version),
            cost=_money(gen.cost_usd) if gen.cost_usd is not None else None,
            **kwargs,
        )

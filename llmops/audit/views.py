"""The audit log page: filters, pagination, CSV export safe for spreadsheets."""

from __future__ import annotations

import csv
import json
from datetime import datetime, time, timedelta

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.generic import TemplateView

from llmops.common.text import csv_safe
from llmops.tenancy.mixins import OrgMixin

from . import selectors


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    day = parse_date(value or "")
    if day is None:
        return None
    if end:
        day = day + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


class _Echo:
    def write(self, value):
        return value


class AuditLogView(OrgMixin, TemplateView):
    template_name = "audit/log.html"
    action = "audit.view"

    def filters(self) -> dict:
        g = self.request.GET
        return {
            "actor": g.get("actor", "").strip(),
            "action": g.get("action", "").strip(),
            "target": g.get("target", "").strip(),
            "since": _day(g.get("since")),
            "until": _day(g.get("until"), end=True),
        }

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") == "csv":
            return self.csv_response()
        return super().get(request, *args, **kwargs)

    def csv_response(self):
        events = selectors.event_list(org=self.org, **self.filters())
        writer = csv.writer(_Echo())
        header = [
            "seq",
            "time",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target",
            "details",
            "ip",
            "hash",
        ]

        def rows():
            yield writer.writerow(header)
            for e in events.iterator(chunk_size=2000):
                yield writer.writerow(
                    [
                        csv_safe(v)
                        for v in (
                            e.seq,
                            e.created_at.isoformat(),
                            e.actor_label,
                            e.action,
                            e.target_type,
                            e.target_id,
                            e.target_label,
                            json.dumps(e.details, sort_keys=True),
                            e.ip,
                            e.hash,
                        )
                    ]
                )

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{self.org.slug}.csv"'
        return response

    def get_context_data(self, **kwargs):
        f = self.filters()
        page = self.paginate(selectors.event_list(org=self.org, **f), per_page=50)
        g = self.request.GET
        return super().get_context_data(
            page=page,
            actions=selectors.action_names(org=self.org),
            f={k: g.get(k, "") for k in ("actor", "action", "target", "since", "until")},
            **kwargs,
        )

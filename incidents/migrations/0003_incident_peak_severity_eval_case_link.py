"""`Incident.peak_severity` (the most severe severity an incident ever had; the SEV1/SEV2
postmortem rule follows it), back-filled from the current severity and the severities the
timeline recorded (opened as, changed from and to). `IncidentEvalCase.how` and `note`: a case
created from the incident, or an existing case linked by a maintainer."""

from django.db import migrations, models

RANK = {"SEV1": 1, "SEV2": 2, "SEV3": 3, "SEV4": 4}


def peak_of(severities) -> str:
    real = [s for s in severities if s in RANK]
    return min(real, key=RANK.__getitem__) if real else "pending"


def backfill_peak(apps, schema_editor):
    Incident = apps.get_model("incidents", "Incident")
    TimelineEntry = apps.get_model("incidents", "TimelineEntry")
    seen: dict[int, set] = {}
    for incident_id, severity in Incident.objects.values_list("pk", "severity"):
        seen[incident_id] = {severity}
    for incident_id, kind, data in TimelineEntry.objects.filter(
        kind__in=("opened", "severity")
    ).values_list("incident_id", "kind", "data"):
        if isinstance(data, dict):
            keys = ("severity",) if kind == "opened" else ("from", "to")
            seen.setdefault(incident_id, set()).update(data.get(k) for k in keys)
    for incident_id, severities in seen.items():
        peak = peak_of(severities)
        if peak != "pending":
            Incident.objects.filter(pk=incident_id).update(peak_severity=peak)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_timeline_append_only")]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="peak_severity",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("SEV1", "SEV1 (critical)"),
                    ("SEV2", "SEV2 (major)"),
                    ("SEV3", "SEV3 (minor)"),
                    ("SEV4", "SEV4 (low)"),
                ],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="incidentevalcase",
            name="how",
            field=models.CharField(
                choices=[
                    ("created", "Created from the incident"),
                    ("linked", "Linked by a maintainer"),
                ],
                default="created",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="incidentevalcase",
            name="note",
            field=models.CharField(blank=True, max_length=1000),
        ),
        migrations.AddConstraint(
            model_name="incidentevalcase",
            constraint=models.UniqueConstraint(
                fields=("incident", "eval_case_id"), name="incidentevalcase_unique_case"
            ),
        ),
        # Last: no schema change after row updates in this transaction (PostgreSQL).
        migrations.RunPython(backfill_peak, migrations.RunPython.noop),
    ]

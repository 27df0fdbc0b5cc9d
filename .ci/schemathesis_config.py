"""Write the schemathesis config of `.ci/schemathesis.sh`: path parameters drawn mostly from
the demo organization's real objects (so the fuzzer reaches past the 404s), sometimes
generated. Run with `manage.py shell < .ci/schemathesis_config.py`; prints TOML."""

import json

from incidents.models import Incident
from llmops.catalog.models import ModelVersion
from llmops.evals.models import EvalDataset, EvalRun
from llmops.tenancy.models import Organization
from llmops.traces.models import Generation
from prompts.models import Label, Prompt
from reviews.models import QueueItem, ReviewQueue

org = Organization.objects.get(slug="acme")
mine = {"organization": org}
real = {
    "name": list(Prompt.objects.filter(**mine).values_list("name", flat=True)[:5]),
    "label": sorted(
        set(Label.objects.filter(prompt__organization=org).values_list("name", flat=True))
    )[:5],
    "model_id": list(ModelVersion.objects.filter(**mine).values_list("model_id", flat=True)[:5]),
    "id": [
        *EvalDataset.objects.filter(**mine).values_list("pk", flat=True)[:3],
        *EvalRun.objects.filter(**mine).values_list("pk", flat=True)[:3],
        *ModelVersion.objects.filter(**mine).values_list("pk", flat=True)[:3],
    ],
    "queue_id": list(ReviewQueue.objects.filter(**mine).values_list("pk", flat=True)[:3]),
    "item_id": list(
        QueueItem.objects.filter(queue__organization=org).values_list("pk", flat=True)[:5]
    ),
    "external_id": list(
        Generation.objects.filter(**mine).values_list("external_id", flat=True)[:3]
    ),
    "number": [
        1,
        2,
        *Incident.objects.filter(**mine).values_list("number", flat=True)[:3],
    ],
}
lines = ["# Written by .ci/schemathesis_config.py for one run.", "[parameters]"]
for name, values in real.items():
    if values:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}')
for name, values in real.items():
    if values:
        lines += ["", f"[dictionaries.{name}]", f"values = {json.dumps(sorted(set(values)))}"]
print("\n".join(lines))

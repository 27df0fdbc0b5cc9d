"""Prompt registry fixtures: an approved catalog model in both organizations, a prompt owned
by maint1 and maint2, and helpers to propose, pass evals and approve."""

from __future__ import annotations

import pytest

from llmops.catalog.models import ModelVersion
from prompts import services
from prompts.models import Prompt

MODEL_ID = "claude-sonnet-4-5-20250929"
TEMPLATE = "Answer {{ customer_name }} about {{ topic }}. Be brief."


def make_model(world, model_id=MODEL_ID, status="approved", **extra):
    return ModelVersion.objects.create(
        organization=world.org, provider="anthropic", model_id=model_id, status=status, **extra
    )


def make_prompt(world, name="support-reply", owners=("maint1", "maint2"), **kw) -> Prompt:
    prompt = services.prompt_create(actor=world.actor(owners[0]), name=name, **kw)
    for who in owners[1:]:
        services.prompt_owner_grant(
            actor=world.actor("admin"), prompt=prompt, username=world.users[who].username
        )
    return prompt


def propose(world, prompt, who="maint1", template=TEMPLATE, model=MODEL_ID, **kw):
    version, _ = services.version_create(
        actor=world.actor(who) if isinstance(who, str) else who,
        prompt=prompt,
        model=model,
        template=template,
        **kw,
    )
    return version


def pass_eval(world, version, passed=True, who="maint1"):
    return services.version_record_eval_run(
        actor=world.actor(who),
        version=version,
        data={"tool": "custom", "results": [{"passed": passed}, {"passed": passed}]},
    )


def approve(world, version, who="maint2", **kw):
    return services.version_review(
        actor=world.actor(who), version=version, decision="approve", comment="ok", **kw
    )


def approved_version(world, prompt, template=TEMPLATE, **kw):
    version = propose(world, prompt, template=template, **kw)
    pass_eval(world, version)
    approve(world, version)
    version.refresh_from_db()
    return version


@pytest.fixture
def model(acme, globex):
    make_model(globex)
    return make_model(acme)


@pytest.fixture
def prompt(acme, model):
    return make_prompt(acme)


def key_info(row):
    from llmops.tenancy.actor import KeyInfo

    return KeyInfo(
        id=row.pk,
        organization_id=row.organization_id,
        name=row.name,
        public_id=row.public_id,
        scopes=tuple(row.scopes),
        user_id=row.user_id,
        created_by_id=row.created_by_id,
    )


def prompt_yaml(
    name, template="Answer {{ customer_name }} about {{ topic }}. Be brief.", model=MODEL_ID
):
    return (
        f"name: {name}\ndescription: From git\ntags: [support]\nmodel: {model}\n"
        f"template: |\n  {template}\nparams:\n  temperature: 0.2\n"
    )

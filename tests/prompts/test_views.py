"""Prompt registry pages: render, escape untrusted text, forms call the services."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from llmops.common.errors import InvalidTransition, NotPermitted, PolicyViolation
from prompts import services
from prompts.models import Deployment, Label, PromptVersion

from .conftest import MODEL_ID, approved_version, make_prompt, pass_eval, propose

XSS = "<script>alert(1)</script>"


def url(route, acme, **kw):
    return reverse(f"prompts:{route}", kwargs={"org_slug": acme.org.slug, **kw})


def test_list_with_filters_and_empty_state(acme, login, model):
    c = login(acme.users["viewer"])
    r = c.get(url("list", acme))
    assert r.status_code == 200 and b"No prompts yet" in r.content
    make_prompt(acme, name="alpha", tags=["support"])
    make_prompt(acme, name="beta", description="billing")
    r = c.get(url("list", acme))
    assert b"alpha" in r.content and b"beta" in r.content
    assert b"alpha" not in c.get(url("list", acme) + "?q=billing").content
    r = c.get(url("list", acme) + "?tag=support")
    assert b"alpha" in r.content and b">beta<" not in r.content
    r = c.get(url("list", acme) + "?q=zzz")
    assert b"No prompt matches" in r.content


def test_list_owner_state_and_needs_my_review(acme, login, prompt):
    other = make_prompt(acme, name="other", owners=("admin",))
    propose(acme, prompt)  # maint1's version: maint2 should review it
    propose(acme, other, who="admin")
    c = login(acme.users["maint2"])
    r = c.get(url("list", acme) + "?mine=1")
    assert b"support-reply" in r.content and b">other<" not in r.content
    r = c.get(url("list", acme) + "?owner=acme-admin")
    assert b">other<" in r.content and b"support-reply" not in r.content
    r = c.get(url("list", acme) + "?state=in_review")
    assert b"support-reply" in r.content
    c = login(acme.users["maint1"])  # the author has nothing to review
    assert b"support-reply" not in c.get(url("list", acme) + "?mine=1").content


def test_list_marks_prompts_with_risky_models(acme, login, prompt):
    v = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v)
    v.model.status = "deprecated"
    v.model.save()
    r = login(acme.users["viewer"]).get(url("list", acme))
    assert b'data-testid="model-risk"' in r.content
    assert (
        b"support-reply"
        in login(acme.users["viewer"]).get(url("list", acme) + "?state=at_risk").content
    )


def test_list_query_count_is_flat(acme, login, model, django_assert_max_num_queries):
    for i in range(3):
        p = make_prompt(acme, name=f"p{i}")
        v = approved_version(acme, p)
        services.label_deploy(actor=acme.actor("maint2"), prompt=p, label="production", version=v)
    c = login(acme.users["viewer"])
    c.get(url("list", acme))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        c.get(url("list", acme))
    for i in range(3, 9):
        p = make_prompt(acme, name=f"p{i}")
        v = approved_version(acme, p)
        services.label_deploy(actor=acme.actor("maint2"), prompt=p, label="production", version=v)
    with CaptureQueriesContext(connection) as many:
        c.get(url("list", acme))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_create_prompt_page(acme, login, model):
    c = login(acme.users["maint1"])
    assert c.get(url("create", acme)).status_code == 200
    r = c.post(url("create", acme), {"name": "Bad name", "required_approvals": 1})
    assert r.status_code == 200 and b"lowercase" in r.content
    r = c.post(url("create", acme), {"name": "fresh", "tags": "a, b", "required_approvals": 1})
    assert r.status_code == 302 and r["Location"] == url("propose", acme, name="fresh")
    assert login(acme.users["viewer"]).get(url("create", acme)).status_code == 403


def test_prompt_page_escapes_and_shows_sections(acme, login, prompt):
    services.prompt_update(actor=acme.actor("maint1"), prompt=prompt, description=XSS)
    v = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v)
    r = login(acme.users["viewer"]).get(url("detail", acme, name=prompt.name))
    assert r.status_code == 200
    assert XSS.encode() not in r.content
    for text in (b"Labels", b"Versions", b"Deployment history", b"Owners", b"acme-maint1"):
        assert text in r.content
    assert b"Grant or revoke" not in r.content  # viewers do not manage


def test_owner_grant_and_revoke_from_the_prompt_page(acme, login, prompt):
    c = login(acme.users["admin"])
    r = c.post(
        url("detail", acme, name=prompt.name),
        {"op": "grant", "username": "acme-reviewer1", "approve_prompt": "on"},
    )
    assert r.status_code == 302
    from llmops.tenancy import guardian

    assert guardian.has_grant(acme.users["reviewer1"], "approve_prompt", prompt)
    assert not guardian.has_grant(acme.users["reviewer1"], "deploy_prompt", prompt)
    c.post(
        url("detail", acme, name=prompt.name),
        {"op": "revoke", "username": "acme-reviewer1", "approve_prompt": "on"},
    )
    assert not guardian.has_grant(acme.users["reviewer1"], "approve_prompt", prompt)
    r = login(acme.users["maint2"]).post(
        url("detail", acme, name="support-reply"), {"op": "grant", "username": "acme-viewer"}
    )
    assert r.status_code == 302  # maint2 owns it (conftest grants), so may manage


def test_version_page_escapes_template_and_comments(acme, login, prompt):
    v = propose(acme, prompt, template=f"{XSS} {{{{ name }}}}", message=XSS)
    pass_eval(acme, v)
    services.version_review(
        actor=acme.actor("maint2"), version=v, decision="request_changes", comment=XSS
    )
    r = login(acme.users["viewer"]).get(url("version", acme, name=prompt.name, number=1))
    assert r.status_code == 200
    assert XSS.encode() not in r.content
    assert b"&lt;script&gt;" in r.content
    assert b"No production traffic" in r.content
    assert b"passed" in r.content


def test_propose_form(acme, login, prompt):
    c = login(acme.users["maint1"])
    r = c.get(url("propose", acme, name=prompt.name))
    assert r.status_code == 200 and b"js/prompts.js" in r.content
    r = c.post(
        url("propose", acme, name=prompt.name),
        {
            "kind": "template",
            "template": "Hi {{ bad var }}",
            "model": MODEL_ID,
            "submit_for_review": "on",
        },
    )
    assert r.status_code == 200 and b"not a variable placeholder" in r.content
    r = c.post(
        url("propose", acme, name=prompt.name),
        {
            "kind": "messages",
            "messages": '[{"role": "user", "content": "{{ q }}"}]',
            "model": MODEL_ID,
            "params": '{"temperature": 0.1}',
            "submit_for_review": "on",
        },
    )
    assert r.status_code == 302
    v = PromptVersion.objects.get(prompt=prompt)
    assert v.messages == [{"role": "user", "content": "{{ q }}"}] and v.status == "in_review"
    r = c.post(
        url("propose", acme, name=prompt.name),
        {"kind": "messages", "messages": "[not json", "model": MODEL_ID},
    )
    assert r.status_code == 200 and b"not valid JSON" in r.content


def test_review_form_blocks_the_author_and_lets_another_owner_approve(acme, login, prompt):
    v = propose(acme, prompt)
    pass_eval(acme, v)
    review = url("review", acme, name=prompt.name, number=1)
    r = login(acme.users["maint1"]).post(review, {"decision": "approve"}, follow=True)
    assert b"Four eyes" in r.content
    v.refresh_from_db()
    assert v.status == "in_review"
    c = login(acme.users["maint2"])
    assert c.get(review).status_code == 200
    r = c.post(review, {"decision": "approve", "comment": "lgtm"})
    assert r.status_code == 302
    v.refresh_from_db()
    assert v.status == "approved"
    assert login(acme.users["viewer"]).get(review).status_code == 403


def test_deploy_and_one_click_rollback(acme, login, prompt):
    v1 = approved_version(acme, prompt)
    v2 = approved_version(acme, prompt, template="two {{ x }}")
    c = login(acme.users["maint2"])
    deploy = url("deploy", acme, name=prompt.name)
    r = c.get(deploy)
    assert r.status_code == 200 and b"data-confirm" in r.content
    for v in (v1, v2):
        assert (
            c.post(
                deploy, {"label": "production", "version": v.number, "reason": "ship"}
            ).status_code
            == 302
        )
    page = c.get(url("detail", acme, name=prompt.name))
    assert b'data-testid="rollback"' in page.content and b"Roll back to v1" in page.content
    r = c.post(deploy, {"label": "production", "version": 1, "reason": "Rollback from v2"})
    assert r.status_code == 302
    assert Label.objects.get(prompt=prompt, name="production").version == v1
    assert Deployment.objects.filter(is_rollback=True).count() == 1


def test_deploy_of_unapproved_shows_the_rule(acme, login, prompt):
    propose(acme, prompt)
    c = login(acme.users["maint2"])
    r = c.post(
        url("deploy", acme, name=prompt.name), {"label": "production", "version": 1}, follow=True
    )
    assert b"accepts only approved versions" in r.content
    assert not Label.objects.exists()


def test_diff_page_side_by_side_escaped(acme, login, prompt):
    propose(acme, prompt, template="line one\nsame\n" + XSS)
    propose(acme, prompt, template="line uno\nsame\n", params={"temperature": 0.5})
    r = login(acme.users["viewer"]).get(url("diff", acme, name=prompt.name) + "?a=1&b=2")
    assert r.status_code == 200
    assert XSS.encode() not in r.content
    assert b"diff-del" in r.content and b"diff-add" in r.content
    assert b"line uno" in r.content and b"temperature" in r.content
    empty = make_prompt(acme, name="empty")
    assert (
        b"No versions"
        in login(acme.users["viewer"]).get(url("diff", acme, name=empty.name)).content
    )


def test_version_page_actions_withdraw_and_retract(acme, login, prompt):
    v = propose(acme, prompt)
    c = login(acme.users["maint2"])
    services.version_review(actor=acme.actor("maint2"), version=v, decision="reject", comment="no")
    a = v.approvals.get()
    r = c.post(
        url("version", acme, name=prompt.name, number=1), {"op": "retract", "approval": a.pk}
    )
    assert r.status_code == 302
    v.refresh_from_db()
    assert v.status == "in_review"
    r = login(acme.users["maint1"]).post(
        url("version", acme, name=prompt.name, number=1), {"op": "withdraw"}
    )
    v.refresh_from_db()
    assert v.status == "withdrawn"


def test_home_card_and_nav(acme, login, prompt):
    propose(acme, prompt)
    r = login(acme.users["maint2"]).get(reverse("tenancy:home", kwargs={"org_slug": acme.org.slug}))
    assert b"Prompts" in r.content and b"waiting for your review" in r.content
    assert url("list", acme).encode() in r.content


@pytest.mark.parametrize("page", ["detail", "propose", "deploy", "diff"])
def test_unknown_prompt_is_404(acme, login, page, model):
    assert login(acme.users["admin"]).get(url(page, acme, name="missing")).status_code == 404


def test_malformed_posted_ids_are_404(acme, login, prompt):
    propose(acme, prompt)
    c = login(acme.users["admin"])
    r = c.post(url("detail", acme, name=prompt.name), {"op": "protect", "label": "x"})
    assert r.status_code == 404
    r = c.post(
        url("version", acme, name=prompt.name, number=1), {"op": "retract", "approval": "1;"}
    )
    assert r.status_code == 404
    r = c.post(
        url("version", acme, name=prompt.name, number=1), {"op": "retract", "approval": "999"}
    )
    assert r.status_code == 404


def test_break_glass_is_displayed_on_the_version_forever(acme, login, prompt):
    v = propose(acme, prompt, who="admin")
    c = login(acme.users["admin"])
    review = url("review", acme, name=prompt.name, number=1)
    r = c.post(review, {"decision": "approve", "break_glass_reason": "Sole admin on call, INC-4"})
    assert r.status_code == 302
    page = login(acme.users["viewer"]).get(url("version", acme, name=prompt.name, number=1))
    assert b'data-testid="break-glass"' in page.content and b"Sole admin on call" in page.content
    v.refresh_from_db()
    assert v.status == "approved"
    listing = login(acme.users["viewer"]).get(url("detail", acme, name=prompt.name))
    assert b"break-glass" in listing.content


def test_list_htmx_request_gets_only_the_results_partial(acme, login, model):
    make_prompt(acme, name="alpha")
    c = login(acme.users["viewer"])
    full = c.get(url("list", acme) + "?q=alp")
    assert b"<html" in full.content and b'id="prompt-results"' in full.content
    part = c.get(url("list", acme) + "?q=alp", HTTP_HX_REQUEST="true")
    assert part.status_code == 200
    assert b"<html" not in part.content and b"alpha" in part.content


class _Rollback(Exception):
    pass


def _service_allows(fn, **kwargs) -> bool:
    """Whether the service lets this actor do it now (who and when: 403 / 409), tried in a
    savepoint that is rolled back. A governance gate (PolicyViolation) is not who or when."""
    try:
        with transaction.atomic():
            fn(**kwargs)
            raise _Rollback
    except (_Rollback, PolicyViolation):
        return True
    except (NotPermitted, InvalidTransition):
        return False


def _version_in(acme, prompt, state):
    if state == "approved":
        return approved_version(acme, prompt)
    version = propose(acme, prompt, submit=state != "draft")
    if state == "withdrawn":
        services.version_withdraw(actor=acme.actor("maint1"), version=version)
    return version


@pytest.mark.parametrize("state", ["draft", "in_review", "approved", "withdrawn"])
@pytest.mark.parametrize("who", ["maint1", "maint2", "admin", "reviewer1"])
def test_version_page_offers_exactly_what_the_services_allow(acme, login, prompt, who, state):
    version = _version_in(acme, prompt, state)
    actor = acme.actor(who)
    page = login(acme.users[who]).get(url("version", acme, name=prompt.name, number=version.number))
    assert page.status_code == 200
    shown = {
        "submit": b">Submit for review</button>" in page.content,
        "withdraw": b">Withdraw</button>" in page.content,
        "review": b'data-testid="review-link"' in page.content,
    }
    allowed = {
        "submit": _service_allows(services.version_submit, actor=actor, version=version),
        "withdraw": _service_allows(services.version_withdraw, actor=actor, version=version),
        "review": _service_allows(
            services.version_review,
            actor=actor,
            version=version,
            decision="request_changes",
            comment="please",
        ),
    }
    assert shown == allowed


def test_retract_is_offered_whenever_the_service_allows_it(acme, login, prompt):
    """A request for changes stays the decider's to take back after the author withdrew the
    version; the page offers it because the service allows it (the template no longer
    restates the rule)."""
    version = propose(acme, prompt)
    objection = services.version_review(
        actor=acme.actor("maint2"), version=version, decision="request_changes", comment="why"
    )
    services.version_withdraw(actor=acme.actor("maint1"), version=version)
    page_url = url("version", acme, name=prompt.name, number=version.number)
    assert b'value="retract"' not in login(acme.users["maint1"]).get(page_url).content
    c = login(acme.users["maint2"])
    assert b'value="retract"' in c.get(page_url).content
    r = c.post(page_url, {"op": "retract", "approval": objection.pk})
    assert r.status_code == 302
    objection.refresh_from_db()
    assert objection.retracted_at is not None
    assert b'value="retract"' not in c.get(page_url).content


@pytest.mark.parametrize("page", ["detail", "version"])
def test_unknown_or_missing_op_is_a_400_page_naming_the_ops(acme, login, prompt, page):
    propose(acme, prompt)
    kw = {"name": prompt.name} | ({"number": 1} if page == "version" else {})
    c = login(acme.users["admin"])
    for data in ({"op": "explode"}, {}):
        r = c.post(url(page, acme, **kw), data)
        assert r.status_code == 400 and b'data-testid="unknown-op"' in r.content
        assert (b"\xe2\x80\x9cexplode\xe2\x80\x9d" in r.content) == bool(data)
    assert (
        b"grant, protect, revoke, settings" in c.post(url("detail", acme, name=prompt.name)).content
    )
    # The prompt is looked up first: a missing one is a 404 whatever the op.
    missing = {"name": "missing"} | ({"number": 1} if page == "version" else {})
    assert c.post(url(page, acme, **missing), {"op": "explode"}).status_code == 404

"""Reviewer journeys in a real browser: three items labelled with the keyboard alone (the
next item arrives through htmx, no full page load), the queue pages a maintainer uses, and
XSS payloads as model output, input, context and tool calls: nothing runs, nothing leaves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from llmops.tenancy import guardian
from llmops.traces.models import Generation
from reviews import services
from reviews.models import Assignment, QueueItem, Review

XSS = Path(__file__).resolve().parents[1] / "fixtures" / "xss"
RUBRIC = {
    "questions": [
        {"key": "correct", "label": "Is the answer correct?", "type": "boolean", "required": True},
        {
            "key": "tone",
            "label": "Tone",
            "type": "choice",
            "required": True,
            "options": ["friendly", "neutral", "rude"],
        },
        {
            "key": "issues",
            "label": "Issues",
            "type": "multi_choice",
            "required": False,
            "options": ["hallucination", "format", "safety"],
        },
        {
            "key": "quality",
            "label": "Quality",
            "type": "scale",
            "required": True,
            "min": 1,
            "max": 5,
        },
        {"key": "notes", "label": "Notes", "type": "text", "required": False},
    ]
}


def _queue(world, n, outputs=None, overlap=1):
    queue = services.queue_create(
        actor=world.actor("maint1"),
        name="Support answers",
        rubric=RUBRIC,
        reviewers_per_item=overlap,
        instructions="Judge the **answer**.",
    )
    for who in ("reviewer1", "reviewer2"):
        guardian.grant("review_queue", world.users[who], queue)
    now = timezone.now()
    items = []
    for i in range(n):
        out = outputs[i] if outputs else f"Answer **{i}**: your parcel ships today."
        gen = Generation.objects.create(
            organization=world.org,
            external_id=f"e2e-{i}",
            created_at=now - timedelta(minutes=i),
            ingested_at=now,
            model_id="gpt-4o-2024-08-06",
            prompt_name="support-reply",
            prompt_version=2,
            input={
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": out if outputs else f"Where is parcel {i}?"},
                ]
            },
            output=out,
            context=[{"source": "kb/shipping.md", "text": out if outputs else "2-4 days."}],
            tool_calls=[{"name": "lookup_order", "arguments": {"q": out if outputs else i}}],
        )
        items.append(
            QueueItem.objects.create(
                organization=world.org,
                queue=queue,
                generation=gen,
                reviews_needed=overlap,
                created_at=now - timedelta(minutes=n - i),
            )
        )
    return queue, items


def _ready(page):
    """Wait until reviews.js has set up the screen now shown (keys, focus)."""
    item = page.locator("#review-screen").get_attribute("data-item")
    expect(page.locator("html")).to_have_attribute("data-reviews-ready", item)


def _tab_to(page, text, limit=60):
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate("document.activeElement && document.activeElement.textContent")
        if label and text in label:
            return
    raise AssertionError(f"could not reach {text!r} with Tab")


def test_reviewer_labels_three_items_with_the_keyboard_only(e2e_world, login_as, page, shot):
    acme = e2e_world["acme"]
    queue, items = _queue(acme, 4)
    login_as("acme-reviewer1")
    page.goto("/o/acme/reviews/")
    _tab_to(page, "Start reviewing")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#review-form")).to_be_visible()
    _ready(page)
    # Focus starts on the first question; the page is now driven by keys only.
    assert page.evaluate("document.activeElement.name") == "q_correct"
    page.evaluate("window.__samePage = true")
    page.keyboard.press("?")
    expect(page.locator("#keymap")).to_be_visible()
    shot("keymap")
    page.keyboard.press("Escape")
    expect(page.locator("#keymap")).to_be_hidden()
    page.keyboard.press("m")
    expect(page.locator("#out-raw")).to_be_visible()
    page.keyboard.press("m")
    expect(page.locator("#out-md")).to_be_visible()
    # After a single answer the next required question is active: the optional "issues"
    # is entered only on purpose (Shift+Tab back into it), and left with Enter.
    plans = [
        (
            ["y", "2", "Shift+Tab", "1", "Enter", "4"],
            {"correct": True, "tone": "neutral", "issues": ["hallucination"], "quality": 4},
        ),
        (["n", "3", "2"], {"correct": False, "tone": "rude", "quality": 2}),
        (
            ["y", "1", "Shift+Tab", "3", "Enter", "5"],
            {"correct": True, "tone": "friendly", "issues": ["safety"], "quality": 5},
        ),
    ]
    seen = []
    for n, (keys, _) in enumerate(plans):
        item_id = int(page.locator("#review-screen").get_attribute("data-item"))
        seen.append(item_id)
        expect(page.locator("[data-lease-expires]")).to_contain_text("left")
        for key in keys:
            page.keyboard.press(key)
        assert page.evaluate("document.activeElement.id") == "submit-review"
        if n == 0:
            shot("reviewer-screen")
        page.keyboard.press("Control+Enter")
        expect(page.locator("#review-screen")).not_to_have_attribute("data-item", str(item_id))
        _ready(page)
        assert page.evaluate("window.__samePage === true"), "the next item came by a full page load"
        assert page.url.endswith(
            f"/items/{page.locator('#review-screen').get_attribute('data-item')}/"
        )
        assert page.evaluate("document.activeElement.name") == "q_correct"
        expect(page.locator("#review-announce")).to_contain_text("loaded")
    # The fourth item is skipped, with a reason, still from the keyboard.
    skipped = int(page.locator("#review-screen").get_attribute("data-item"))
    page.keyboard.press("s")
    expect(page.locator("#skip-dialog")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "skip-reason"
    page.keyboard.type("Outside my expertise")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#messages")).to_contain_text("Nothing left for you")
    assert Assignment.objects.get(item_id=skipped).skip_reason == "Outside my expertise"
    items, extra = items[:3], items[3]
    assert skipped == extra.pk
    assert seen == [i.pk for i in items]
    got = {r.item_id: r.answers for r in Review.objects.filter(queue=queue)}
    assert got == {item.pk: answers for item, (_, answers) in zip(items, plans, strict=True)}


# RUBRIC's tone, issues and quality questions, with optional questions and required text
# between and after them.
MIXED = {
    "questions": [
        {"key": "correct", "label": "Correct", "type": "boolean", "required": True},
        *RUBRIC["questions"][1:4],
        {
            "key": "audience",
            "label": "Audience",
            "type": "choice",
            "required": False,
            "options": ["novice", "expert"],
        },
        {"key": "summary", "label": "Summary", "type": "text", "required": True},
        {
            "key": "severity",
            "label": "Severity",
            "type": "scale",
            "required": True,
            "min": 0,
            "max": 3,
        },
        RUBRIC["questions"][4],
    ]
}


def _active(page):
    """The question the screen shows as active (highlighted and named in the hint)."""
    return page.evaluate(
        """() => {
            const q = document.querySelectorAll("#review-form fieldset[data-active]");
            return q.length === 1 ? q[0].dataset.question : q.length ? "several" : null;
        }"""
    )


def _expect_active(page, key, label):
    assert _active(page) == key
    if key is None:
        expect(page.locator("#key-target")).to_have_text(
            "Keys answer no question: Tab or Shift+Tab to one."
        )
    else:
        expect(page.locator("#key-target strong")).to_have_text(label)


def test_every_key_goes_to_the_question_the_hint_shows(e2e_world, login_as, page, shot):
    """A whole rubric of every question type, optional questions in between, typed from the
    keyboard: a digit after a single-choice answer goes to the next REQUIRED question (never
    into the optional multiple choice that follows), optional questions take keys only when
    entered on purpose, text takes the digits typed into it, and a click on the page keeps
    the active question. The stored answers are checked in the database."""
    acme = e2e_world["acme"]
    queue, items = _queue(acme, 3)  # the third one is shown once the second is stored
    queue.rubric = MIXED
    queue.save(update_fields=["rubric"])
    login_as("acme-reviewer1")
    page.goto("/o/acme/reviews/")
    page.get_by_role("button", name="Start reviewing").click()
    expect(page.locator("#review-form")).to_be_visible()
    _ready(page)
    _expect_active(page, "correct", "Correct")

    # First item: typed straight through, the way a fast reviewer types.
    page.keyboard.press("y")
    _expect_active(page, "tone", "Tone")
    page.keyboard.press("2")
    _expect_active(page, "quality", "Quality")  # not the optional "issues" after "tone"
    page.keyboard.press("3")  # "safety" in "issues" would have been ticked here
    _expect_active(page, "summary", "Summary")
    assert page.evaluate("document.activeElement.name") == "q_summary"
    page.keyboard.type("2 of 3 steps ok")  # digits in a text answer are text
    page.keyboard.press("Escape")
    _expect_active(page, "severity", "Severity")
    page.keyboard.press("0")
    _expect_active(page, None, None)
    assert page.evaluate("document.activeElement.id") == "submit-review"
    page.keyboard.press("1")  # no question active: the key changes nothing
    page.keyboard.press("y")
    shot("typed-through")
    first = int(page.locator("#review-screen").get_attribute("data-item"))
    page.keyboard.press("Control+Enter")
    expect(page.locator("#review-screen")).not_to_have_attribute("data-item", str(first))
    _ready(page)
    _expect_active(page, "correct", "Correct")

    # Second item: detours into the optional questions, entered on purpose.
    page.keyboard.press("n")
    page.keyboard.press("1")
    _expect_active(page, "quality", "Quality")
    page.keyboard.press("Shift+Tab")  # back into the optional multiple choice
    _expect_active(page, "issues", "Issues")
    page.keyboard.press("2")
    page.keyboard.press("3")
    _expect_active(page, "issues", "Issues")  # toggling stays on the question
    page.keyboard.press("Enter")
    _expect_active(page, "quality", "Quality")
    page.keyboard.press("5")
    _expect_active(page, "summary", "Summary")
    page.keyboard.type("ok")
    page.keyboard.press("Shift+Tab")  # back into the optional single choice
    _expect_active(page, "audience", "Audience")
    page.keyboard.press("2")
    _expect_active(page, "severity", "Severity")  # "summary" is answered already
    page.locator("#out-md").click()  # focus leaves for the page: the active question stays
    _expect_active(page, "severity", "Severity")
    page.keyboard.press("3")
    _expect_active(page, None, None)
    shot("optional-detours")
    second = int(page.locator("#review-screen").get_attribute("data-item"))
    page.keyboard.press("Control+Enter")
    expect(page.locator("#review-screen")).not_to_have_attribute("data-item", str(second))
    stored = {r.item_id: r.answers for r in Review.objects.filter(queue=queue)}
    assert stored == {
        first: {
            "correct": True,
            "tone": "neutral",
            "quality": 3,
            "summary": "2 of 3 steps ok",
            "severity": 0,
        },
        second: {
            "correct": False,
            "tone": "friendly",
            "issues": ["format", "safety"],
            "quality": 5,
            "audience": "expert",
            "summary": "ok",
            "severity": 3,
        },
    }
    assert [first, second] == [i.pk for i in items[:2]]


def test_maintainer_queue_pages(e2e_world, login_as, page, shot):
    acme = e2e_world["acme"]
    queue, items = _queue(acme, 2, overlap=2)
    for who, correct in (("reviewer1", True), ("reviewer2", False)):
        actor = acme.actor(who)
        services.item_claim(actor=actor, queue=queue)
        services.review_submit(
            actor=actor,
            item=items[0],
            answers={"correct": correct, "tone": "neutral", "quality": 3},
        )
    login_as("acme-maint1")
    for name, path in (
        ("queue-list", "/o/acme/reviews/"),
        ("stats", f"/o/acme/reviews/{queue.pk}/stats/"),
        ("settings", f"/o/acme/reviews/{queue.pk}/settings/"),
        ("adjudication", f"/o/acme/reviews/{queue.pk}/adjudication/"),
    ):
        page.goto(path)
        expect(page.locator("h1")).to_contain_text(
            "Support answers" if name != "queue-list" else "Review queues"
        )
        shot(name)
    # Rule preview through htmx, without leaving the page.
    page.goto(f"/o/acme/reviews/{queue.pk}/settings/")
    page.locator("summary", has_text="Add a rule").click()
    page.fill("#id_rate", "1")
    page.get_by_role("button", name="Preview last 24 h").click()
    expect(page.locator("#rule-preview")).to_contain_text("would have sampled")
    page.goto(f"/o/acme/reviews/{queue.pk}/adjudication/")
    form = page.locator("article.adjudicate form")
    form.locator("input[name=q_correct][value=false]").check()
    form.locator("input[name=q_tone][value=neutral]").check()
    form.locator("input[name=q_quality][value='3']").check()
    form.get_by_role("button", name="Record final answer").click()
    expect(page.locator("#messages")).to_contain_text("Final answer recorded")


def _payload_chunks(parts=3):
    html = (XSS / "html-payloads.txt").read_text(encoding="utf-8", errors="replace").splitlines()
    markdown = (XSS / "markdown-payloads.txt").read_text(encoding="utf-8")
    picked = html[::20]  # ~330 payloads
    size = len(picked) // parts + 1
    return ["\n".join(picked[i * size : (i + 1) * size]) + "\n\n" + markdown for i in range(parts)]


def test_xss_payloads_on_the_reviewer_screen_stay_inert(e2e_world, login_as, page, shot):
    acme = e2e_world["acme"]
    chunks = _payload_chunks()
    queue, items = _queue(acme, len(chunks), outputs=chunks)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login_as("acme-reviewer1")
    page.goto("/o/acme/reviews/")
    page.get_by_role("button", name="Start reviewing").click()
    for n, item in enumerate(items):
        if n:
            page.goto(f"/o/acme/reviews/{queue.pk}/items/{item.pk}/")
        expect(page.locator("#out-md")).to_be_visible()
        _ready(page)
        page.keyboard.press("m")  # the raw view too
        expect(page.locator("#out-raw")).to_be_visible()
        page.wait_for_timeout(300)
        found = page.evaluate(
            """() => {
                const screen = document.getElementById("review-screen");
                const bad = [];
                for (const el of screen.querySelectorAll("*")) {
                    for (const a of el.attributes) {
                        if (a.name.startsWith("on")) bad.push(el.tagName + " " + a.name);
                        if (["href", "src", "action", "formaction"].includes(a.name) && /^\\s*(javascript|data|vbscript):/i.test(a.value)) bad.push(el.tagName + " " + a.name);
                    }
                    if (["SCRIPT", "IMG", "IFRAME", "OBJECT", "EMBED", "SVG", "VIDEO", "AUDIO", "STYLE", "LINK", "META", "BASE"].includes(el.tagName)) bad.push(el.tagName);
                }
                return bad;
            }"""
        )
        assert found == [], found[:10]
        if n == 0:
            shot("xss-output")
    assert dialogs == []

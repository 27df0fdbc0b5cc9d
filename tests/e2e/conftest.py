"""Browser journeys: Playwright (sync API) driving /usr/bin/chromium against `live_server`.

Every test in tests/e2e is marked `browser` automatically and runs after all other tests
(Playwright leaves an asyncio loop registered in the main thread, which Django's ORM then
refuses; `DJANGO_ALLOW_ASYNC_UNSAFE=true` is set only while the browser is up).

Fixtures:
- `browser` (session): Chromium launched with the flags from NOTES.md. Without
  /usr/bin/chromium the test is skipped with the reason locally and FAILS when CI=true.
- `page`: a fresh browser context per test, `base_url` = the live server, so
  `page.goto("/accounts/login/")` works. The test fails on any console error, page error
  (uncaught exception) or Content-Security-Policy violation, and on any request to a host
  other than the live server (the request is aborted). Expecting an error page? Call
  `allow_console(r"status of 404")` first.
- `login_as(username, password=PASSWORD)`: logs in through the real login form; returns page.
- `shot(name)`: full-page screenshot to `test-results/screenshots/<test>-<name>.png`.
- `e2e_world`: dict with `acme` and `globex` (OrgWorld from tests.factories, users
  `<org>-admin`, `<org>-maint1`, `<org>-maint2`, `<org>-reviewer1`, `<org>-reviewer2`,
  `<org>-viewer`; password `tests.factories.PASSWORD`).
- `allow_console(pattern)`: a regex of console errors the test expects (e.g. a 404 page).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.factories import PASSWORD, make_org

CHROMIUM = os.environ.get("LLMOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
E2E_DIR = Path(__file__).resolve().parent
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
# Surfaces CSP violations as console errors even where Chromium would only report them.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _is_e2e(item) -> bool:
    return E2E_DIR in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config, items):
    browser_items = []
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.browser)
            browser_items.append(item)
    # Browser tests last: once Playwright has run, the main thread looks "async" to Django.
    if browser_items:
        chosen = set(map(id, browser_items))
        items[:] = [i for i in items if id(i) not in chosen] + browser_items


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    problems = getattr(item, "_browser_problems", None)
    if problems:
        pytest.fail("The browser reported problems:\n  " + "\n  ".join(problems), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # In CI a browser test that did not run is a failure, never a quiet skip.
    if (
        in_ci()
        and report.skipped
        and "browser" in item.keywords
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"browser test skipped in CI (CI=true): {reason}"
    return report


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if in_ci():
            pytest.fail(f"{message} (CI=true: browser tests must run)", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # 5 s by default; a 2-core CI machine is slower
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _async_unsafe_for_browser_tests(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def e2e_db(transactional_db):
    """Committed data the live server's thread can see (cleaned by flush afterwards; on
    PostgreSQL the settings let that flush truncate the audit table, audit migration 0003)."""
    yield


@pytest.fixture
def e2e_world(e2e_db):
    """acme and globex, each with a user per role, made through tests.factories."""
    return {"acme": make_org("acme"), "globex": make_org("globex")}


def _allowed(node) -> list[re.Pattern]:
    if not hasattr(node, "_browser_allowed"):
        node._browser_allowed = []
    return node._browser_allowed


@pytest.fixture
def allow_console(request):
    def _allow(pattern: str):
        _allowed(request.node).append(re.compile(pattern))

    return _allow


@pytest.fixture
def page(browser, live_server, e2e_db, request):
    problems: list[str] = []
    request.node._browser_problems = problems
    allowed = _allowed(request.node)
    server = urlsplit(live_server.url)

    def note(text: str):
        if not any(p.search(text) for p in allowed):
            problems.append(text)

    def on_console(msg):
        if msg.type == "error":
            note(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def guard(route):
        url = urlsplit(route.request.url)
        if url.scheme in {"data", "blob", "about"} or url.netloc == server.netloc:
            route.continue_()
        else:
            problems.append(f"request to another host refused: {route.request.url}")
            route.abort()

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    context.set_default_navigation_timeout(30_000)
    context.add_init_script(CSP_LISTENER)
    context.route("**/*", guard)
    pg = context.new_page()
    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: note(f"page error: {exc}"))
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def login_as(page):
    """Log in through the real form: login_as("acme-admin") -> page (now on the home page)."""

    def _login(username: str, password: str = PASSWORD):
        page.context.clear_cookies()
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.click("button[type=submit]")
        if urlsplit(page.url).path.startswith("/accounts/login"):
            raise AssertionError(f"login as {username!r} failed: still on {page.url}")
        return page

    return _login


@pytest.fixture
def shot(page, request):
    """shot("home") -> Path of a full-page screenshot of the current page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def _shot(name: str) -> Path:
        path = SCREENSHOTS / f"{test}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot

"""Screenshots for the README: `python docs/screenshots.py` (or `make screenshots`).

Runs the demo on a throw-away SQLite database, serves it with runserver, logs in through
the real form with Playwright (/usr/bin/chromium) and captures the main screens into
docs/screenshots/: the log-in page, the organization home, every page in the main
navigation and the first detail page linked from each list."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXTRA_PAGES = [  # (file name, path) beyond the navigation, when they answer 200
    ("members", "/o/acme/members/"),
    ("api-keys", "/o/acme/api-keys/"),
    ("audit-log", "/o/acme/audit/"),
]


CAPTIONS = {
    "login": "Log in",
    "home": "Organization home",
    "prompts": "Prompts",
    "prompts-detail": "A prompt: labels, versions, deployments, owners",
    "models": "Approved model versions",
    "models-detail": "A model version and its evidence",
    "production": "Production dashboard (hourly rollups)",
    "evals": "Evals",
    "evals-detail": "An eval run",
    "reviews": "Review queues",
    "reviews-detail": "Queue statistics and agreement",
    "incidents": "Incidents",
    "incidents-detail": "An incident: checklist and timeline",
    "members": "Members and invitations",
    "members-detail": "Changing a member's role",
    "keys": "API keys",
    "audit": "Audit log (hash-chained)",
    "reviewer-reviews": "A reviewer's queues",
    "reviewer-item": "Reviewing an item (keyboard first)",
}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server did not answer at {url}")


def capture(base: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    saved: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(
            base_url=base, viewport={"width": 1280, "height": 860}, device_scale_factor=1
        )
        page = context.new_page()

        def snap(name: str) -> None:
            page.wait_for_load_state("networkidle")
            path = OUT / f"{len(saved) + 1:02d}-{name}.png"
            page.screenshot(path=str(path))
            saved.append(path)
            print(f"  {path.relative_to(ROOT)}  {page.url.removeprefix(base)}")

        def login(username: str) -> None:
            context.clear_cookies()
            page.goto("/accounts/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", "demo")
            with page.expect_navigation():
                page.click("button[type=submit]")

        page.goto("/accounts/login/")
        snap("login")
        login("acme-admin")
        snap("home")
        nav = [
            (a.inner_text().strip(), a.get_attribute("href"))
            for a in page.locator("nav.mainnav a").all()
        ]
        seen = {"/o/acme/"}
        for label, href in nav:
            if not href or href in seen:
                continue
            seen.add(href)
            if page.goto(href).status != 200:
                continue
            snap(slug(label))
            detail = None
            # A row of the list first; else any deeper link that is not a "new" form.
            for selector in ("main table tbody a", "main a"):
                for a in page.locator(selector).all():
                    target = a.get_attribute("href") or ""
                    if (
                        target.startswith(href)
                        and target.rstrip("/") != href.rstrip("/")
                        and not target.rstrip("/").endswith("/new")
                        and "?" not in target
                    ):
                        detail = target
                        break
                if detail:
                    break
            if detail and page.goto(detail).status == 200:
                snap(f"{slug(label)}-detail")
        for name, path in EXTRA_PAGES:
            if path not in seen and page.goto(path).status == 200:
                seen.add(path)
                snap(name)
        # The reviewer's view of their work.
        login("acme-reviewer1")
        for label, href in nav:
            if href and "review" in href and page.goto(href).status == 200:
                snap(f"reviewer-{slug(label)}")
                start = page.locator("main").get_by_role(
                    "button", name=re.compile(r"claim|start|next|review", re.I)
                )
                if start.count():
                    with page.expect_navigation():
                        start.first.click()
                    snap("reviewer-item")
                break
        browser.close()
    return saved


def update_readme(saved: list[Path]) -> None:
    """Rewrite the table between the screenshot markers in README.md."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- screenshots:start -->", "<!-- screenshots:end -->"
    if start not in text or end not in text:
        return
    cells = []
    for path in saved:
        key = path.stem.split("-", 1)[1]
        caption = CAPTIONS.get(key, key.replace("-", " ").capitalize())
        cells.append(f"![{caption}](docs/screenshots/{path.name})<br>{caption}")
    if len(cells) % 2:
        cells.append("")
    rows = ["| | |", "|---|---|"]
    rows += [f"| {cells[i]} | {cells[i + 1]} |" for i in range(0, len(cells), 2)]
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + tail)


def main() -> int:
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="llmops-shots-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
            "DEBUG": "1",
            "AXES_ENABLED": "0",
            "LOG_LEVEL": "WARNING",
        }
        for var in ("CELERY_BROKER_URL", "REDIS_URL", "LLMOPS_TESTING"):
            env.pop(var, None)
        manage = [python, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "demo"], env=env, check=True)
        port = free_port()
        server = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/healthz")
            saved = capture(base)
        finally:
            server.terminate()
            server.wait(timeout=10)
    total = sum(p.stat().st_size for p in saved)
    print(f"{len(saved)} screenshots, {total / 1e6:.2f} MB in {OUT.relative_to(ROOT)}")
    update_readme(saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())

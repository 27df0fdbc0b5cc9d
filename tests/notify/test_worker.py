"""A real Celery worker against Redis and PostgreSQL: kill it mid-delivery (SIGKILL, the
whole process group), start another, and the outbox row still ends delivered, with the
same idempotency id seen by the receiver each time (at least once).

Run: CELERY_BROKER_URL=redis://127.0.0.1:6379/13 DATABASE_URL=postgres://postgres@127.0.0.1:5432/llmops_x
     .venv/bin/pytest tests/notify/test_worker.py"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection, transaction

from llmops.notify import services
from llmops.notify.models import Channel, DeliveryAttempt, Notification, Status
from llmops.notify.services import outbox

from ..factories import make_org

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

BROKER = os.environ.get("CELERY_BROKER_URL", "")
ROOT = Path(settings.BASE_DIR)
CELERY = str(Path(sys.executable).with_name("celery"))


def _database_url() -> str:
    d = connection.settings_dict
    auth = d["USER"] or "postgres"
    if d.get("PASSWORD"):
        auth += f":{d['PASSWORD']}"
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


class Workers:
    """Starts `celery worker` subprocesses on a private queue; kills them all at the end."""

    def __init__(self, queue: str, tmp: Path, **extra_env: str):
        self.queue = queue
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": BROKER,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "LLMOPS_TESTING": "1",
            "DJANGO_SETTINGS_MODULE": "llmops.settings",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                CELERY,
                "-A",
                "llmops",
                "worker",
                "-P",
                "prefork",
                "-c",
                "1",
                "-Q",
                self.queue,
                "-n",
                f"{name}-{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool child too
        )
        proc.log_path = self.tmp / f"{name}.log"
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass

    def logs(self) -> str:
        out = []
        for proc in self.procs:
            try:
                out.append(proc.log_path.read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n---\n".join(out)

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc)


def _wait(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def broker_queue():
    if not BROKER or not settings.IS_POSTGRES:
        pytest.skip(
            "real-worker test: set CELERY_BROKER_URL=redis://127.0.0.1:6379/<private db> "
            "and DATABASE_URL=postgres://... to run it"
        )
    from celery import Celery

    queue = f"notify-test-{uuid.uuid4().hex[:12]}"
    producer = Celery("notify-test-producer", broker=BROKER)
    producer.conf.broker_connection_retry_on_startup = False
    try:
        yield producer, queue
    finally:
        try:
            import redis

            client = redis.Redis.from_url(BROKER)
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            # Forget our killed worker's unacknowledged message (it names our queue).
            for tag, raw in client.hscan_iter("unacked"):
                if queue.encode() in raw:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
        finally:
            producer.close()


def test_worker_killed_mid_delivery_loses_nothing(
    transactional_db, broker_queue, receiver, tmp_path
):
    import threading

    producer, queue = broker_queue
    acme = make_org("acme")
    services.webhook_create(actor=acme.actor(), name="stalls once", url=receiver.url)
    receiver.stall = threading.Event()  # the first delivery hangs until the worker is killed

    def send(ids):
        for pk in ids:
            producer.send_task("llmops.notify.tasks.deliver", args=[pk], queue=queue)

    workers = Workers(queue, tmp_path)
    try:
        first = workers.start("w1")
        # The outbox row is written in a committed transaction; the commit enqueues it.
        with mock.patch.object(outbox, "_enqueue", send):
            with transaction.atomic():
                (row,) = services.notify(
                    org=acme.org, recipients=[], kind="incident.opened", subject="INC-7", body="b"
                )
        assert row.channel == Channel.WEBHOOK
        assert receiver.first_seen.wait(90), "worker 1 never delivered:\n" + workers.logs()

        # Mid-delivery: the worker holds the row lock and waits on the receiver. Kill it.
        workers.kill(first)
        assert first.returncode is not None
        receiver.stall.set()
        row.refresh_from_db()
        assert row.status == Status.PENDING and row.attempts == 0  # rolled back, not lost

        workers.start("w2")

        # What beat does every minute: re-queue rows pending too long (here: at once). The
        # killed worker's lock goes when PostgreSQL notices, so ask until the row is sent.
        def delivered() -> bool:
            row.refresh_from_db()
            if row.status == Status.DELIVERED:
                return True
            producer.send_task(
                "llmops.notify.tasks.requeue_stale", kwargs={"older_than": 0}, queue=queue
            )
            return False

        assert _wait(delivered, timeout=90, step=3), "never delivered:\n" + workers.logs()
    finally:
        workers.close()

    assert len(receiver.received) >= 2
    ids = {got.json["id"] for got in receiver.received}
    assert ids == {str(row.idempotency_key)}
    assert {got.headers.get("X-Llmops-Delivery") for got in receiver.received} == ids
    # The killed attempt left no trace; the one that worked is recorded once.
    (attempt,) = DeliveryAttempt.objects.filter(notification=row)
    assert attempt.ok and attempt.status_code == 200
    assert Notification.objects.get(pk=row.pk).attempts == 1


def test_worker_retries_with_backoff_until_delivered(
    transactional_db, broker_queue, receiver, tmp_path
):
    producer, queue = broker_queue
    acme = make_org("acme")
    services.webhook_create(actor=acme.actor(), name="flaky", url=receiver.url)
    receiver.statuses = [500, 503, 200]

    def send(ids):
        for pk in ids:
            producer.send_task("llmops.notify.tasks.deliver", args=[pk], queue=queue)

    # retries after a full-jitter delay: uniform up to 1 s, then up to 2 s, never under 1 s
    workers = Workers(queue, tmp_path, NOTIFY_BACKOFF_SECONDS="1")
    try:
        workers.start("w1")
        with mock.patch.object(outbox, "_enqueue", send):
            with transaction.atomic():
                (row,) = services.notify(
                    org=acme.org, recipients=[], kind="prompt.approved", subject="v3", body=""
                )

        def delivered() -> bool:
            row.refresh_from_db()
            return row.status == Status.DELIVERED

        assert _wait(delivered, timeout=90, step=0.5), "never delivered:\n" + workers.logs()
    finally:
        workers.close()
    attempts = DeliveryAttempt.objects.filter(notification=row).order_by("at", "pk")
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 500), (False, 503), (True, 200)]
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # backed off (at least 1 s), not a hot loop
    assert row.attempts == 3
    assert [got.json["id"] for got in receiver.received] == [str(row.idempotency_key)] * 3


def test_beat_requeues_a_lost_delivery_and_a_worker_sends_it(
    transactional_db, broker_queue, receiver, tmp_path
):
    """Real `celery beat` and `celery worker` against Redis: a row whose task message was
    lost (never enqueued) is picked up by the beat's periodic sweep and delivered."""
    producer, queue = broker_queue
    acme = make_org("acme")
    services.webhook_create(actor=acme.actor(), name="lost message", url=receiver.url)
    with mock.patch.object(outbox, "_enqueue", lambda ids: None):  # the message is lost
        with transaction.atomic():
            (row,) = services.notify(
                org=acme.org, recipients=[], kind="model.suspended", subject="m", body=""
            )
    workers = Workers(queue, tmp_path, NOTIFY_REQUEUE_EVERY_SECONDS="1", NOTIFY_STALE_SECONDS="0")
    log = open(tmp_path / "beat.log", "wb")  # noqa: SIM115 - closed below
    beat = subprocess.Popen(
        [
            CELERY,
            "-A",
            "llmops",
            "beat",
            "-l",
            "INFO",
            "-s",
            str(tmp_path / "beat-schedule"),
            "--pidfile",
            str(tmp_path / "beat.pid"),
        ],
        cwd=ROOT,
        env=workers.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        workers.start("w1")

        def delivered() -> bool:
            row.refresh_from_db()
            return row.status == Status.DELIVERED

        beat_log = lambda: (tmp_path / "beat.log").read_text(errors="replace")[-3000:]  # noqa: E731
        assert _wait(delivered, timeout=90, step=0.5), (
            "never delivered:\n" + workers.logs() + "\n--- beat ---\n" + beat_log()
        )
    finally:
        Workers.kill(beat)
        log.close()
        workers.close()
    assert "Sending due task notify-requeue-stale" in beat_log()
    assert {got.json["id"] for got in receiver.received} == {str(row.idempotency_key)}

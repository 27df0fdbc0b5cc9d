"""A local webhook receiver on 127.0.0.1 (a thread), for delivery tests."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers with `statuses` in turn (the last one repeats); `stall` (an Event) makes the
    first request wait until it is set, or `stall_seconds` pass."""

    url: str = ""
    statuses: list = field(default_factory=lambda: [200])
    received: list = field(default_factory=list)
    stall: threading.Event | None = None
    stall_seconds: float = 30.0
    first_seen: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return True
            time.sleep(0.05)
        return len(self.received) >= count


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                index = len(receiver.received)
                receiver.received.append(Received(headers=dict(self.headers), body=body))
                status = receiver.statuses[min(index, len(receiver.statuses) - 1)]
            receiver.first_seen.set()
            if index == 0 and receiver.stall is not None:
                receiver.stall.wait(receiver.stall_seconds)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')
            except OSError:
                pass  # the sender went away (a killed worker)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        if rec.stall is not None:
            rec.stall.set()
        server.shutdown()
        server.server_close()

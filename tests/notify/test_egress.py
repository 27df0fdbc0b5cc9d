"""Webhook SSRF: the connection goes to the address that was checked (no second DNS
look-up to rebind), and IPv6 forms that embed a private IPv4 address are refused.

No test here sends traffic anywhere but 127.0.0.1: the resolver is faked, and every
connection to another address is intercepted before a socket is opened."""

from __future__ import annotations

import ipaddress
import socket
from unittest import mock

import pytest
import urllib3.util.connection
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from llmops.common.errors import InvalidInput
from llmops.notify import egress, services
from llmops.notify.models import DeliveryAttempt, Status

pytestmark = pytest.mark.django_db

STRICT = {**settings.LLMOPS, "NOTIFY_ALLOW_PRIVATE_WEBHOOKS": False}
PUBLIC = "8.8.8.8"  # never connected to: intercepted below


class FakeDNS:
    """getaddrinfo for made-up names: answers[name] is a list of answers, one per look-up
    (the last repeats); other names go to the real resolver (IP literals)."""

    def __init__(self, answers: dict[str, list[list[str]]]):
        self.answers = answers
        self.lookups: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(name)
        turn = self.answers[name]
        ips = turn[min(len(self.lookups) - 1, len(turn) - 1)]
        infos = []
        for ip in ips:
            if ":" in ip:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return infos


@pytest.fixture
def connects(monkeypatch):
    """Every address a connection is opened to; only loopback ones are really opened."""
    opened: list[tuple[str, int]] = []
    real_urllib3 = urllib3.util.connection.create_connection
    real_socket = socket.create_connection

    def guard(real):
        def create_connection(address, *args, **kwargs):
            host, port = address[0], address[1]
            opened.append((host, port))
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ip = None
            if ip is None or not ip.is_loopback:
                raise ConnectionRefusedError(f"test guard: no traffic to {host}")
            return real(address, *args, **kwargs)

        return create_connection

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guard(real_urllib3))
    monkeypatch.setattr(socket, "create_connection", guard(real_socket))
    return opened


def _row(world, url):
    endpoint, secret = services.webhook_create(actor=world.actor(), name="hook", url=url)
    with transaction.atomic():
        (row,) = services.notify(org=world.org, recipients=[], kind="x.y", subject="s", body="")
    return row


@override_settings(LLMOPS=STRICT)
def test_dns_rebinding_connects_to_the_checked_address(acme, receiver, monkeypatch, connects):
    """The name resolves to a public address when checked and to 127.0.0.1 afterwards
    (rebinding): the delivery connects to the public address it checked, never to the
    private one (it used to resolve the name again to connect)."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    dns = FakeDNS({"hook.rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    row = _row(acme, f"http://hook.rebind.test:{port}/hook")
    outcome = services.notification_deliver(notification_id=row.pk)
    assert receiver.received == []  # nothing reached the private address
    assert connects == [(PUBLIC, port)]
    assert dns.lookups == ["hook.rebind.test"]  # one look-up, checked and used
    assert outcome.status == "retry" and "connection failed" in outcome.detail


@override_settings(LLMOPS=STRICT)
@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        [PUBLIC, "10.0.0.1"],  # one private answer among public ones is enough
        ["64:ff9b::a00:1"],  # NAT64 of 10.0.0.1
        ["64:ff9b::7f00:1"],  # NAT64 of 127.0.0.1
        ["2002:a00:1::1"],  # 6to4 of 10.0.0.1
        ["2002:a9fe:a9fe::1"],  # 6to4 of 169.254.169.254
        ["::ffff:10.0.0.1"],
        ["::a00:1"],  # IPv4-compatible 10.0.0.1
        ["2001:0:4136:e378:8000:63bf:f5ff:fffe"],  # Teredo (client 10.0.0.1)
        ["0.0.0.0"],
        ["169.254.169.254"],
        ["fe80::1"],
        ["fd00::1"],
        ["224.0.0.1"],
        ["ff02::1"],
        ["100.64.0.1"],
        ["192.0.0.8"],
    ],
)
def test_names_resolving_to_non_public_addresses_are_refused(acme, monkeypatch, connects, answer):
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"hook.example.test": [answer]}))
    row = _row(acme, "https://hook.example.test/hook")
    outcome = services.notification_deliver(notification_id=row.pk)
    assert outcome.status == "failed"  # for good: retrying cannot make it public
    assert "non-public address" in outcome.detail
    assert connects == []
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert DeliveryAttempt.objects.get(notification=row).ok is False


@override_settings(LLMOPS=STRICT)
@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::a00:1]/",
        "http://[2002:a00:1::]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::a00:1]/",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://app.localhost/",
    ],
)
def test_embedded_private_literals_are_refused_at_creation(acme, url):
    with pytest.raises(InvalidInput) as exc:
        services.webhook_create(actor=acme.actor(), name="internal", url=url)
    assert exc.value.field == "url"


@pytest.mark.parametrize(
    "ip",
    ["64:ff9b::a00:1", "2002:a00:1::", "::ffff:10.0.0.1", "::a00:1", "2001:0:a00:1::", "0.0.0.0"],
)
def test_non_public_sees_embedded_ipv4(ip):
    assert egress.non_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_and_their_public_embeddings_pass(ip):
    assert not egress.non_public(ipaddress.ip_address(ip))


def test_private_webhooks_allowed_setting_still_reaches_loopback(
    acme, receiver, monkeypatch, connects
):
    """With NOTIFY_ALLOW_PRIVATE_WEBHOOKS (on in tests and DEBUG) a name on loopback is
    delivered to, with the URL's name as Host header."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"hooks.internal.test": [["127.0.0.1"]]}))
    row = _row(acme, f"http://hooks.internal.test:{port}/hook?x=1")
    assert services.notification_deliver(notification_id=row.pk).status == "delivered"
    (got,) = receiver.received
    assert got.headers["Host"] == f"hooks.internal.test:{port}"
    assert connects == [("127.0.0.1", port)]


def test_the_next_checked_address_is_tried_when_connecting_fails(
    acme, receiver, monkeypatch, connects
):
    """A dual-stack name whose first answer does not accept connections is delivered to
    its next answer (every answer was checked); nothing else is looked up."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    dns = FakeDNS({"hooks.internal.test": [["127.0.0.2", "127.0.0.1"]]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    row = _row(acme, f"http://hooks.internal.test:{port}/hook")
    assert services.notification_deliver(notification_id=row.pk).status == "delivered"
    assert connects == [("127.0.0.2", port), ("127.0.0.1", port)]
    assert dns.lookups == ["hooks.internal.test"] and len(receiver.received) == 1


def test_https_keeps_the_name_for_sni_and_the_certificate(monkeypatch):
    """The pool connects to the checked IP but verifies the certificate for, and sends
    SNI with, the URL's name."""
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"hooks.example.test": [[PUBLIC]]}))
    with mock.patch.object(egress.urllib3, "HTTPSConnectionPool") as pool:
        pool.return_value.urlopen.return_value = mock.Mock(status=204, reason="No Content")
        response = egress.post(
            "https://hooks.example.test/in?a=1",
            body=b"{}",
            headers={"Content-Type": "application/json"},
            timeout=3,
            allow_private=False,
        )
    assert response.status == 204
    kwargs = pool.call_args.kwargs
    assert kwargs["host"] == PUBLIC and kwargs["port"] == 443
    assert kwargs["server_hostname"] == "hooks.example.test"
    assert kwargs["assert_hostname"] == "hooks.example.test"
    assert kwargs["cert_reqs"] == "CERT_REQUIRED"
    call = pool.return_value.urlopen.call_args
    assert call.args == ("POST", "/in?a=1")
    assert call.kwargs["headers"]["Host"] == "hooks.example.test"
    assert call.kwargs["redirect"] is False

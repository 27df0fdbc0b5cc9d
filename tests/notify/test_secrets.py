"""Webhook secrets: Standard Webhooks signing with rotation, encryption at rest
(llmops.common.crypto), the rotate_secrets command, and the pages' handling of them."""

from __future__ import annotations

import base64
from datetime import timedelta
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from llmops.audit.models import AuditEvent
from llmops.common import crypto
from llmops.common.errors import InvalidInput
from llmops.notify import services, signing
from llmops.notify.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def _stored(endpoint, column="secret") -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM notify_webhookendpoint WHERE id = %s", [endpoint.pk])
        return cursor.fetchone()[0]


def _deliver(world, receiver, endpoint):
    with transaction.atomic():
        (row,) = services.notify(org=world.org, recipients=[], kind="x.y", subject="s", body="")
    assert services.notification_deliver(notification_id=row.pk).status == "delivered"
    return receiver.received[-1]


def _verifies(secret: str, got) -> bool:
    try:
        Webhook(secret).verify(got.body, got.headers)
    except WebhookVerificationError:
        return False
    return True


# --- signing --------------------------------------------------------------------------


def test_new_secrets_are_standard_base64_of_32_bytes():
    secret = services.new_secret()
    assert secret.startswith("whsec_") and signing.is_standard_secret(secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert services.new_secret() != secret


def test_signature_follows_the_specification():
    """HMAC-SHA256 of "<id>.<timestamp>.<body>" with the base64-decoded secret, base64."""
    import hashlib
    import hmac

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    value = signing.signature([secret], "msg_1", 1700000000, b'{"a":1}')
    mac = hmac.new(b"k" * 32, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert value == "v1," + base64.b64encode(mac).decode()


def test_rotation_signs_with_both_secrets_until_the_grace_period_ends(acme, receiver):
    endpoint, old = services.webhook_create(actor=acme.actor(), name="hook", url=receiver.url)
    endpoint, new = services.webhook_rotate_secret(
        actor=acme.actor(), endpoint=endpoint, keep_old_hours=2
    )
    got = _deliver(acme, receiver, endpoint)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert _verifies(new, got) and _verifies(old, got)  # receivers switch without a gap
    assert not _verifies(services.new_secret(), got)
    event = AuditEvent.objects.filter(action="webhook.secret_rotated").get()
    assert event.details["old_secret_signs_until"] and new not in str(event.details)
    # Once the grace period is over only the new secret signs.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_until=timezone.now() - timedelta(seconds=1)
    )
    got = _deliver(acme, receiver, endpoint)
    assert got.headers["webhook-signature"].count("v1,") == 1
    assert _verifies(new, got) and not _verifies(old, got)


def test_rotation_with_no_grace_period_stops_the_old_secret_at_once(acme, receiver):
    endpoint, old = services.webhook_create(actor=acme.actor(), name="hook", url=receiver.url)
    endpoint, new = services.webhook_rotate_secret(
        actor=acme.actor(), endpoint=endpoint, keep_old_hours=0
    )
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == "" and endpoint.previous_secret_until is None
    got = _deliver(acme, receiver, endpoint)
    assert _verifies(new, got) and not _verifies(old, got)


@pytest.mark.parametrize("hours", [-1, 24 * 7 + 1, "soon", ["1"], 1.5, True])
def test_rotation_grace_period_is_validated(acme, hours):
    endpoint, old = services.webhook_create(
        actor=acme.actor(), name="hook", url="https://x.example/h"
    )
    with pytest.raises(InvalidInput) as exc:
        services.webhook_rotate_secret(actor=acme.actor(), endpoint=endpoint, keep_old_hours=hours)
    assert exc.value.field == "keep_old_hours"
    endpoint.refresh_from_db()
    assert endpoint.secret == old


def test_legacy_url_safe_secret_still_signs_and_the_page_asks_to_rotate(acme, receiver, login):
    endpoint, _ = services.webhook_create(actor=acme.actor(), name="hook", url=receiver.url)
    legacy = "whsec_" + "-_" * 21 + "a"  # the old token_urlsafe form
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=legacy)
    endpoint.refresh_from_db()
    got = _deliver(acme, receiver, endpoint)
    assert got.headers["webhook-signature"].startswith("v1,")
    assert signing.verify(
        legacy, got.headers["X-Llmops-Timestamp"], got.body, got.headers["X-Llmops-Signature"]
    )
    page = login(acme.users["admin"]).get(
        reverse("notify:webhook_detail", kwargs={"org_slug": "acme", "endpoint_id": endpoint.pk})
    )
    assert 'data-testid="legacy-secret"' in page.content.decode()


# --- the pages ------------------------------------------------------------------------


def _detail(world, endpoint):
    return reverse(
        "notify:webhook_detail", kwargs={"org_slug": world.org.slug, "endpoint_id": endpoint.pk}
    )


def test_rotate_on_the_page_with_a_grace_period(acme, login):
    endpoint, old = services.webhook_create(
        actor=acme.actor(), name="hook", url="https://x.example/h"
    )
    client = login(acme.users["admin"])
    response = client.post(_detail(acme, endpoint), {"op": "rotate", "keep_old_hours": "0"})
    endpoint.refresh_from_db()
    assert response.status_code == 200 and endpoint.secret in response.content.decode()
    assert endpoint.signing_secrets() == [endpoint.secret]
    for bad in ("abc", "-3", "999", "1\x00"):
        response = client.post(_detail(acme, endpoint), {"op": "rotate", "keep_old_hours": bad})
        assert response.status_code == 400
        assert "keep_old_hours" in response.content.decode()  # the field's error is shown
    endpoint.refresh_from_db()
    assert old not in endpoint.signing_secrets()


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a\x00b", "url": "https://x.example/h"},
        {"name": "ok", "url": "https://x.example/\x00"},
        {"name": "ok", "url": "https://x.example/h", "event_filter": "prompt.\x00"},
        {"name": "ok", "url": "https://[::1"},
        {"name": "ok", "url": "https://x.example:99999/"},
    ],
)
def test_bad_webhook_form_input_is_a_form_error_not_a_500(acme, login, data):
    client = login(acme.users["admin"])
    response = client.post(reverse("notify:webhooks", kwargs={"org_slug": "acme"}), data)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert "errorlist" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_list_for_a_text_field_takes_one_value(acme, login):
    client = login(acme.users["admin"])
    response = client.post(
        reverse("notify:webhooks", kwargs={"org_slug": "acme"}),
        {"name": ["a", "b"], "url": ["https://x.example/h", "https://y.example/"]},
    )
    assert response.status_code == 201
    assert WebhookEndpoint.objects.get().name == "b"


def test_odd_ops_and_query_strings_are_not_500(acme, login):
    endpoint, _ = services.webhook_create(
        actor=acme.actor(), name="hook", url="https://x.example/h"
    )
    client = login(acme.users["admin"])
    detail = _detail(acme, endpoint)
    assert client.post(detail, {"op": "rot\x00ate"}).status_code in (302, 400)
    assert client.post(detail, {"op": ["rotate", "x"]}).status_code == 400  # unknown op page
    assert client.get(detail + "?page=%00").status_code in (200, 400)
    inbox = reverse("notify:inbox", kwargs={"org_slug": "acme"})
    assert client.get(inbox + "?filter=%00&page=x").status_code in (200, 400)
    assert client.get(inbox + "?filter=unread&filter=x&page=99").status_code == 200
    read_all = reverse("notify:inbox_read_all", kwargs={"org_slug": "acme"})
    response = client.post(read_all, {"next": "//evil.example/"})
    assert response.status_code == 302 and response["Location"] == inbox
    assert client.post(read_all, {"next": "/\x00/evil"}).status_code in (302, 400)


# --- encryption at rest ---------------------------------------------------------------


def test_secrets_are_stored_encrypted(acme):
    endpoint, secret = services.webhook_create(
        actor=acme.actor(), name="hook", url="https://x.example/h"
    )
    endpoint, new = services.webhook_rotate_secret(actor=acme.actor(), endpoint=endpoint)
    for column in ("secret", "previous_secret"):
        stored = _stored(endpoint, column)
        assert stored.startswith("fernet:") and secret not in stored and new not in stored
    endpoint.refresh_from_db()
    assert endpoint.secret == new and endpoint.previous_secret == secret


def _keys(*keys):
    return override_settings(LLMOPS={**settings.LLMOPS, "SECRET_KEYS": list(keys)})


def test_key_rotation_first_key_encrypts_all_decrypt_then_rotate_secrets(acme):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _keys(old_key):
        endpoint, secret = services.webhook_create(
            actor=acme.actor(), name="hook", url="https://x.example/h"
        )
        before = _stored(endpoint)
    # A new key first, the old one kept: existing values still decrypt.
    with _keys(new_key, old_key):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
        out = StringIO()
        call_command("rotate_secrets", stdout=out)
        assert "notify.WebhookEndpoint.secret: 1 re-encrypted" in out.getvalue()
        after = _stored(endpoint)
        assert after != before and after.startswith("fernet:")
    # Re-encrypted with the new key: the old key can go.
    with _keys(new_key):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    with _keys(old_key), pytest.raises(crypto.SecretDecryptionError):
        WebhookEndpoint.objects.get(pk=endpoint.pk)


def test_rotate_secrets_reports_values_no_key_opens(acme):
    with _keys(Fernet.generate_key().decode()):
        services.webhook_create(actor=acme.actor(), name="hook", url="https://x.example/h")
    with _keys(Fernet.generate_key().decode()):
        with pytest.raises(CommandError, match="could not be decrypted"):
            call_command("rotate_secrets", stdout=StringIO(), stderr=StringIO())
        with pytest.raises(CommandError):
            call_command("rotate_secrets", "--dry-run", stdout=StringIO(), stderr=StringIO())


def test_without_keys_a_key_derived_from_secret_key_is_used():
    assert crypto.uses_derived_key()  # tests set no LLMOPS_SECRET_KEYS
    token = crypto.encrypt("s3cret")
    assert crypto.decrypt(token) == "s3cret"
    derived = Fernet(crypto.derived_key(settings.SECRET_KEY))
    assert derived.decrypt(token.removeprefix("fernet:").encode()) == b"s3cret"
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        with pytest.raises(crypto.SecretDecryptionError):
            crypto.decrypt(token)


def test_a_bad_configured_key_is_named():
    from django.core.exceptions import ImproperlyConfigured

    with _keys(Fernet.generate_key().decode(), "not-a-key"):
        with pytest.raises(ImproperlyConfigured, match="key 2"):
            crypto.encrypt("x")
        (error,) = crypto.check_secret_keys()
        assert error.id == "llmops.E101" and "key 2" in error.msg
    assert crypto.check_secret_keys() == []


def test_the_data_migration_encrypts_plaintext_secrets(acme):
    """The migration that introduced the field saves each row: a value stored in clear
    before reads as is, and is encrypted on save."""
    from importlib import import_module

    from django.apps import apps as global_apps

    endpoint, _ = services.webhook_create(
        actor=acme.actor(), name="hook", url="https://x.example/h"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE notify_webhookendpoint SET secret = %s WHERE id = %s",
            ["whsec_plain", endpoint.pk],
        )
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == "whsec_plain"
    migration = import_module(
        "llmops.notify.migrations.0002_webhook_secrets_encrypted_and_rotation"
    )

    class Editor:
        connection = connection

    migration.encrypt_existing(global_apps, Editor())
    stored = _stored(endpoint)
    assert stored.startswith("fernet:") and "whsec_plain" not in stored
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == "whsec_plain"

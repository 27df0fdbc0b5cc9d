"""Keeps the API key look-up cache honest when a person changes outside tenancy's services
(e.g. deactivated in the admin site): their personal keys must stop working at once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .authentication import forget_keys_of_user


@receiver(post_save, sender=get_user_model(), dispatch_uid="tenancy-forget-keys-on-user-save")
def forget_keys_on_user_change(sender, instance, created, update_fields=None, **kwargs):
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    forget_keys_of_user(instance.pk)
    transaction.on_commit(lambda: forget_keys_of_user(instance.pk))

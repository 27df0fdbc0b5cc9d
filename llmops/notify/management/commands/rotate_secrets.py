"""`manage.py rotate_secrets [--dry-run]`: re-encrypt every secret stored at rest (each
EncryptedTextField of every app: webhook signing secrets, ...) with the first key of
LLMOPS_SECRET_KEYS. Key rotation: put the new key first, keep the old ones, run this,
then remove the old keys (README.md, "Secrets at rest"). Exit 1 when a value could not be
decrypted with any configured key (it is left as it was)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction

from llmops.common import crypto


class Command(BaseCommand):
    help = "Re-encrypt the secrets stored at rest with the first key of LLMOPS_SECRET_KEYS."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="only check that every secret decrypts"
        )

    def handle(self, *args, dry_run=False, **options):
        if crypto.uses_derived_key():
            self.stdout.write(f"{crypto.ENV_NAME} is unset: using the key derived from SECRET_KEY.")
        failed = 0
        for model, field_name in crypto.encrypted_fields():
            done, bad = self._rotate(model, field_name, dry_run=dry_run)
            failed += bad
            verb = "decrypt" if dry_run else "re-encrypted"
            self.stdout.write(
                f"{model._meta.label}.{field_name}: {done} {verb}"
                + (" ok" if dry_run else "")
                + (f", {bad} FAILED (no configured key opens them)" if bad else "")
            )
        if failed:
            raise CommandError(f"{failed} secret(s) could not be decrypted; left unchanged.")

    def _rotate(self, model, field_name: str, *, dry_run: bool) -> tuple[int, int]:
        alias = router.db_for_write(model)
        connection = connections[alias]
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        column = quote(model._meta.get_field(field_name).column)
        pk = quote(model._meta.pk.column)
        done = bad = 0
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> '' ORDER BY {pk}")
            rows = cursor.fetchall()
            for row_pk, value in rows:
                try:
                    if dry_run:
                        if crypto.is_encrypted(value):
                            crypto.decrypt(value)
                        done += 1
                        continue
                    rotated = crypto.rotate(value)
                except crypto.SecretDecryptionError:
                    bad += 1
                    self.stderr.write(f"{model._meta.label} {row_pk}: cannot decrypt {field_name}")
                    continue
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", [rotated, row_pk]
                )
                done += 1
        return done, bad

"""Storage secrets encrypted at rest: `EncryptedTextField`, a TextField whose values are stored
as Fernet tokens (cryptography's AES-128-CBC + HMAC-SHA256, with a timestamp and random IV).

Keys come from settings.STORAGE_SECRET_KEYS, a list: the first key encrypts, every key
decrypts (MultiFernet), so keys rotate: put the new key first, keep the old ones after it,
run `manage.py reencrypt_storage_secrets`, then drop the old ones. Each entry is either a
Fernet key (`Fernet.generate_key()`: 44 URL-safe base64 characters) or any other string, from
which a key is derived (HKDF-SHA256); the default list is [SECRET_KEY].

In the database a value reads `fernet:<token>`. A value without that prefix is plaintext
written before migration 0004 encrypted the rows, and reads as it is. Empty values (None, "")
are stored as they are. Lookups by value (`filter(password=...)`) cannot match: each
encryption of a value differs.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"
_HKDF_SALT = b"io_storages.EncryptedTextField"
_HKDF_INFO = b"storage secrets v1"


class SecretKeyError(ImproperlyConfigured):
    """A stored secret that none of STORAGE_SECRET_KEYS decrypts."""


def fernet_key(entry):
    """The Fernet key an entry of STORAGE_SECRET_KEYS stands for: itself when it is one,
    else one derived from it."""
    try:
        Fernet(entry)
        return entry.encode() if isinstance(entry, str) else entry
    except (TypeError, ValueError):
        pass
    secret = entry.encode() if isinstance(entry, str) else bytes(entry)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(secret)
    return base64.urlsafe_b64encode(derived)


@functools.lru_cache(maxsize=8)
def _fernets(entries):
    if not entries:
        raise ImproperlyConfigured("STORAGE_SECRET_KEYS is empty: storage secrets cannot be encrypted")
    keys = [Fernet(fernet_key(entry)) for entry in entries]
    return keys[0], MultiFernet(keys)


def _keys():
    return _fernets(tuple(settings.STORAGE_SECRET_KEYS))


def is_encrypted(stored):
    return isinstance(stored, str) and stored.startswith(PREFIX)


def encrypt(value):
    """The stored form of `value` (a str), encrypted with the first key."""
    return PREFIX + _keys()[0].encrypt(value.encode()).decode()


def decrypt(stored):
    """The value of a stored string: decrypted with whichever key made it, or as it is when
    it is plaintext from before the encryption. SecretKeyError when no key fits."""
    if not is_encrypted(stored):
        return stored
    return _decrypt(tuple(settings.STORAGE_SECRET_KEYS), stored)


@functools.lru_cache(maxsize=4096)
def _decrypt(entries, stored):
    # Cached: every resolve request loads its storage, and the clients built from the
    # decrypted values are kept in memory anyway (registry.shared_client).
    try:
        return _fernets(entries)[1].decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretKeyError(
            "A stored storage secret cannot be decrypted with any key of STORAGE_SECRET_KEYS: every web and "
            "worker process needs the same SECRET_KEY / STORAGE_SECRET_KEYS, and a key that encrypted "
            "secrets stays in the list until `manage.py reencrypt_storage_secrets` has run"
        ) from None


def needs_reencryption(stored):
    """True when `stored` is plaintext, or encrypted with another key than the first."""
    if not stored:
        return False
    if not is_encrypted(stored):
        return True
    try:
        _keys()[0].decrypt(stored[len(PREFIX) :].encode())
        return False
    except InvalidToken:
        return True


def _stored_rows(queryset, names):
    """(pk, {name: value as stored}) for each row: read past the field, so not decrypted."""
    stored = {
        f"_stored_{name}": models.ExpressionWrapper(models.F(name), output_field=models.TextField()) for name in names
    }
    for row in queryset.annotate(**stored).values("pk", *stored).order_by("pk").iterator():
        yield row["pk"], {name: row[f"_stored_{name}"] for name in names}


def _write_stored(queryset, pk, values):
    """Write stored forms as they are (past the field's encryption)."""
    queryset.filter(pk=pk).update(**{n: models.Value(v, output_field=models.TextField()) for n, v in values.items()})


def reencrypt_rows(model, names, using="default"):
    """Encrypt with the first key every value of the fields `names` of `model` that is
    plaintext or encrypted with another key. Returns (values rewritten, [(pk, name)] of the
    values no key decrypts, left as they are)."""
    queryset = model._base_manager.using(using)
    rewritten, undecryptable = 0, []
    for pk, stored in _stored_rows(queryset, names):
        new = {}
        for name, value in stored.items():
            if not needs_reencryption(value):
                continue
            try:
                new[name] = encrypt(decrypt(value))
            except SecretKeyError:
                undecryptable.append((pk, name))
        if new:
            _write_stored(queryset, pk, new)
            rewritten += len(new)
    return rewritten, undecryptable


def decrypt_rows(model, names, using="default"):
    """Store every value of the fields `names` of `model` as plaintext (undoes the encryption;
    SecretKeyError when no key decrypts one). Returns the number of values rewritten."""
    queryset = model._base_manager.using(using)
    rewritten = 0
    for pk, stored in _stored_rows(queryset, names):
        new = {name: decrypt(value) for name, value in stored.items() if is_encrypted(value)}
        if new:
            _write_stored(queryset, pk, new)
            rewritten += len(new)
    return rewritten


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (Fernet, keys from STORAGE_SECRET_KEYS)"

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

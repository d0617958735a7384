"""Encryption at rest of OAuth refresh tokens: AES-256-GCM with keys from Secret Manager.

A stored token looks like ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``:

- a fresh random 96-bit nonce per encryption (NIST SP 800-38D; never reused under one key);
- associated data binds the ciphertext to its format, key id and a caller *context* (for refresh
  tokens: environment + calendar key), so a ciphertext copied onto another calendar or environment
  fails to decrypt instead of authorising the wrong calendar;
- the key id prefix makes rotation possible: the key secret holds a key ring, new tokens use its
  primary key, old tokens still decrypt with their own key and can be re-encrypted
  (``needs_reencrypt``/``reencrypt``) until the old key is dropped.

The key secret (``Settings.secret_token_key``) is either one base64 32-byte key (its id is derived
from its fingerprint) or a key ring in JSON::

    {"primary": "k2", "keys": {"k1": "<base64 key>", "k2": "<base64 key>"}}

``TokenCipher`` is the protocol callers depend on. A Cloud KMS implementation (envelope encryption:
a per-token data key wrapped by ``projects/…/cryptoKeys/…``) fits it unchanged with its own format
prefix (e.g. ``kms1.``); it is not shipped because google-cloud-kms is not a dependency yet.
Library: https://cryptography.io/en/latest/hazmat/primitives/aead/#cryptography.hazmat.primitives.ciphers.aead.AESGCM
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from calsync import errors
from calsync.ports import Secrets

FORMAT = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class TokenDecryptionError(errors.CalsyncError):
    """A stored token cannot be decrypted: unknown key, wrong context, or tampered with.

    Final: the calendar's owner must authorise again (or the missing key be restored).
    """

    code = "token_undecryptable"


class TokenCipher(Protocol):
    """Encrypts short secrets (refresh tokens) bound to a context string."""

    def encrypt(self, plaintext: SecretStr, *, context: str) -> str:
        """The stored form of ``plaintext``; decrypts only with the same ``context``."""
        ...

    def decrypt(self, stored: str, *, context: str) -> SecretStr:
        """The plaintext of ``stored`` (``TokenDecryptionError`` if it cannot be decrypted)."""
        ...

    def needs_reencrypt(self, stored: str) -> bool:
        """True when ``stored`` was not made with the current primary key."""
        ...


@dataclass(frozen=True)
class KeyRing:
    """AES-256 keys by id, and the id new encryptions use."""

    keys: Mapping[str, bytes]
    primary: str

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise errors.SecretUnavailable("token key ring: primary key id is not in the ring")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id):
                raise errors.SecretUnavailable("token key ring: key ids must match [A-Za-z0-9_-]{1,32}")
            if len(key) != KEY_BYTES:
                raise errors.SecretUnavailable(f"token key ring: key {key_id!r} is not {KEY_BYTES} bytes")

    @classmethod
    def parse(cls, value: SecretStr) -> KeyRing:
        """A key ring from the key secret: one base64 key, or the JSON ring (see module docstring)."""
        text = value.get_secret_value().strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
                keys = {str(k): _b64decode(str(v)) for k, v in dict(data["keys"]).items()}
                return cls(keys=keys, primary=str(data["primary"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.SecretUnavailable("token key ring: malformed JSON ring") from exc
        try:
            key = _b64decode(text)
        except ValueError as exc:
            raise errors.SecretUnavailable("token key: not base64") from exc
        return cls(keys={fingerprint(key): key}, primary=fingerprint(key))


def fingerprint(key: bytes) -> str:
    """The key id of a lone key: ``k`` + 8 hex digits of its SHA-256 (not secret, not reversible)."""
    return "k" + hashlib.sha256(key).hexdigest()[:8]


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded (what the key secret holds)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


class AesGcmTokenCipher:
    """``TokenCipher`` on AES-256-GCM with a ``KeyRing``."""

    def __init__(self, ring: KeyRing) -> None:
        """Encrypt with ``ring.primary``; decrypt with whichever key a token names."""
        self._ring = ring
        self._aead = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    @classmethod
    def from_secrets(cls, secrets: Secrets, name: str) -> AesGcmTokenCipher:
        """A cipher whose key ring is secret ``name`` (``SecretUnavailable`` if missing or malformed)."""
        return cls(KeyRing.parse(secrets.get(name)))

    @property
    def primary_key_id(self) -> str:
        """The key id new tokens are encrypted with."""
        return self._ring.primary

    def encrypt(self, plaintext: SecretStr, *, context: str) -> str:
        """``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`` under the primary key."""
        key_id = self._ring.primary
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[key_id].encrypt(nonce, plaintext.get_secret_value().encode("utf-8"), _aad(key_id, context))
        return f"{FORMAT}.{key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, *, context: str) -> SecretStr:
        """The plaintext, if ``stored`` is intact, its key is in the ring and ``context`` matches."""
        key_id, blob = _split(stored)
        aead = self._aead.get(key_id)
        if aead is None:
            raise TokenDecryptionError("token was encrypted with a key that is not in the ring")
        try:
            plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(key_id, context))
        except InvalidTag as exc:
            raise TokenDecryptionError("token does not authenticate (tampered or wrong context)") from exc
        return SecretStr(plain.decode("utf-8"))

    def needs_reencrypt(self, stored: str) -> bool:
        """True when ``stored`` names a key other than the primary (rotate it on next use)."""
        return _split(stored)[0] != self._ring.primary

    def reencrypt(self, stored: str, *, context: str) -> str:
        """``stored`` decrypted and encrypted again under the primary key."""
        return self.encrypt(self.decrypt(stored, context=context), context=context)


def _aad(key_id: str, context: str) -> bytes:
    # The format and key id are authenticated too: relabelling a token's key id breaks it.
    return f"calsync-token/{FORMAT}/{key_id}/{context}".encode()


def _split(stored: str) -> tuple[str, bytes]:
    fmt, _, rest = stored.partition(".")
    key_id, _, body = rest.partition(".")
    if fmt != FORMAT or not key_id or not body:
        raise TokenDecryptionError("not a calsync v1 token")
    try:
        blob = base64.urlsafe_b64decode(body.encode("ascii"))
    except (ValueError, binascii.Error) as exc:
        raise TokenDecryptionError("token body is not base64url") from exc
    if len(blob) < NONCE_BYTES + 16:
        raise TokenDecryptionError("token is truncated")
    return key_id, blob


def _b64decode(text: str) -> bytes:
    # Accept standard and URL-safe alphabets; validate so typos are not silently dropped.
    normalised = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(normalised, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc

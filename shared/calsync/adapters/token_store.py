"""OAuth refresh tokens on Firestore, encrypted at rest (``token_crypto``), by owner key.

The owner key is the clinic id for a clinic connected through OAuth (``oauth_connect``). One
document per owner in ``{env}_oauth_tokens`` (the environment prefix keeps staging and
production apart even in one database). A document holds only the ciphertext, its key id and a
schema version, never the token; the ciphertext is bound to ``{env}/oauth_token/{calendar_key}``,
so a document copied to another calendar or environment does not decrypt. Tokens made with a
retired key are re-encrypted under the primary key when read (lazy rotation).
"""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.token_crypto import TokenCipher
from calsync.logs import get_logger

log = get_logger(__name__)

SCHEMA_VERSION = 1


class EncryptedTokenStore:
    """Refresh tokens by calendar key, encrypted with a ``TokenCipher``."""

    def __init__(self, client: firestore.Client, cipher: TokenCipher, *, environment: str) -> None:
        """Store in ``{environment}_oauth_tokens`` of ``client``'s database."""
        self._client = client
        self._cipher = cipher
        self.environment = environment
        self.collection = f"{environment}_oauth_tokens"

    def context(self, calendar_key: str) -> str:
        """The associated data binding a token to this environment and calendar."""
        return f"{self.environment}/oauth_token/{calendar_key}"

    def _doc(self, calendar_key: str) -> Any:
        if not calendar_key or "/" in calendar_key or calendar_key.startswith("__"):
            raise errors.InvalidRequest("calendar key is not a valid document id")
        return self._client.collection(self.collection).document(calendar_key)

    def put(self, calendar_key: str, refresh_token: SecretStr) -> None:
        """Encrypt and store (replace) the calendar's refresh token."""
        stored = self._cipher.encrypt(refresh_token, context=self.context(calendar_key))
        try:
            self._doc(calendar_key).set(_document(stored))
        except gexc.GoogleAPICallError as exc:
            raise errors.StoreUnavailable(f"saving a refresh token failed: {type(exc).__name__}") from exc
        log.info("refresh token stored", calendar_key=calendar_key)

    def get(self, calendar_key: str) -> SecretStr | None:
        """The calendar's refresh token, or None (``TokenDecryptionError`` if it cannot be decrypted)."""
        try:
            snapshot = self._doc(calendar_key).get()
        except gexc.GoogleAPICallError as exc:
            raise errors.StoreUnavailable(f"reading a refresh token failed: {type(exc).__name__}") from exc
        if not snapshot.exists:
            return None
        stored = str(snapshot.get("ciphertext"))
        token = self._cipher.decrypt(stored, context=self.context(calendar_key))
        if self._cipher.needs_reencrypt(stored):
            self._rotate(calendar_key, token, snapshot.update_time)
        return token

    def exists(self, calendar_key: str) -> bool:
        """True when a token is stored under ``calendar_key`` (nothing is decrypted)."""
        try:
            return bool(self._doc(calendar_key).get(field_paths=["key_id"]).exists)
        except gexc.GoogleAPICallError as exc:
            raise errors.StoreUnavailable(f"reading a refresh token failed: {type(exc).__name__}") from exc

    def delete(self, calendar_key: str) -> None:
        """Forget the calendar's refresh token (after revocation or offboarding)."""
        try:
            self._doc(calendar_key).delete()
        except gexc.GoogleAPICallError as exc:
            raise errors.StoreUnavailable(f"deleting a refresh token failed: {type(exc).__name__}") from exc

    def _rotate(self, calendar_key: str, token: SecretStr, read_at: Any) -> None:
        stored = self._cipher.encrypt(token, context=self.context(calendar_key))
        try:
            # Only if nobody stored a newer token since we read it.
            self._doc(calendar_key).update(
                _document(stored), option=self._client.write_option(last_update_time=read_at)
            )
        except (gexc.FailedPrecondition, gexc.NotFound):
            return
        except gexc.GoogleAPICallError as exc:
            # Rotation is an optimisation: the token was read fine, so the caller goes on.
            log.warning("refresh token re-encryption failed", calendar_key=calendar_key, error_type=type(exc).__name__)
            return
        log.info("refresh token re-encrypted", calendar_key=calendar_key)


def _document(stored: str) -> dict[str, Any]:
    return {
        "ciphertext": stored,
        "key_id": stored.split(".", 2)[1],
        "schema_version": SCHEMA_VERSION,
        "updated_at": firestore.SERVER_TIMESTAMP,
    }

"""IAM Credentials ``signBlob``: service accounts sign without an exported key.

``POST /v1/projects/-/serviceAccounts/{email}:signBlob`` signs ``payload`` (base64) with a key the
emulator holds for that service account (RSA-2048, SHA-256, as Google's system-managed keys) and
answers ``{"keyId", "signedBlob"}``. google-auth's ``iam.Signer`` calls it, so
``service_account.Credentials(signer=iam.Signer(...), subject=...)`` mints domain-wide-delegation
tokens with no key file anywhere. ``/token`` then verifies an assertion whose ``iss`` has such a key:
a forged or tampered assertion for that account is ``invalid_grant``.

Who may sign: the caller must hold ``roles/iam.serviceAccountTokenCreator`` on the account. Locally
every caller does unless ``token_creators`` lists the ones that do (``POST /_emulator/iam``).
Reference: https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/signBlob
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devstack.calendar_emulator.errors import ApiError

SIGN_BLOB_SUFFIX = ":signBlob"


@dataclass
class Iam:
    """Signing keys per service account and who may use them."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    # None: every caller may sign as every account (the local default).
    token_creators: dict[str, set[str]] | None = None
    signed: int = 0

    def key_id(self, account: str) -> str:
        """A stable id of the account's key (Google's are 40 hex digits)."""
        return hashlib.sha1(account.encode()).hexdigest()  # noqa: S324 - an identifier, not security

    def sign_blob(self, account: str, caller: str, payload_b64: str) -> dict[str, str]:
        """Sign ``payload_b64`` as ``account`` on behalf of ``caller``."""
        allowed = self.token_creators is None or caller in self.token_creators.get(account, set())
        if not allowed:
            raise ApiError(
                403,
                "forbidden",
                f"Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist): {account}",
            )
        try:
            payload = base64.b64decode(payload_b64, validate=True)
        except ValueError:
            raise ApiError(400, "badRequest", "Invalid value at 'payload' (TYPE_BYTES)") from None
        key = self.keys.get(account)
        if key is None:
            key = self.keys[account] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        self.signed += 1
        return {"keyId": self.key_id(account), "signedBlob": base64.b64encode(signature).decode()}

    def verifies(self, account: str, signed: bytes, signature: bytes) -> bool | None:
        """True/False when the emulator holds ``account``'s key; None when it never signed for it."""
        key = self.keys.get(account)
        if key is None:
            return None
        try:
            key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

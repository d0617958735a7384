"""Envelope encryption of refresh tokens with Cloud KMS (stg/prod): the ``TokenCipher`` port.

Each token gets a fresh AES-256-GCM data key; the data key is wrapped by the Cloud KMS key
(``projects/…/cryptoKeys/…``, REST ``:encrypt``/``:decrypt``,
https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/encrypt) and
stored beside the ciphertext: ``kms1.<base64url(wrapped key)>.<base64url(nonce ‖ ciphertext ‖ tag)>``.
The context (environment + owner) is associated data of both the wrap and the seal, so a document
copied to another clinic or environment does not decrypt. The key material never leaves KMS; its
rotation is KMS's (a wrapped key names its key version), so nothing needs re-encrypting here. In dev
the same port is ``token_crypto.AesGcmTokenCipher`` with a local key.
"""

from __future__ import annotations

import base64
import binascii
import os

import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.token_crypto import NONCE_BYTES, TokenDecryptionError

FORMAT = "kms1"
KMS_ENDPOINT = "https://cloudkms.googleapis.com"
HTTP_TIMEOUT_S = 30


class KmsEnvelopeCipher:
    """``TokenCipher`` wrapping a per-token data key with a Cloud KMS key."""

    def __init__(self, key_name: str, session: requests.Session, *, endpoint: str = KMS_ENDPOINT) -> None:
        """``session`` authenticates the calls (google-auth's ``AuthorizedSession`` outside tests)."""
        self._key = key_name
        self._session = session
        self._endpoint = endpoint.rstrip("/")

    def encrypt(self, plaintext: SecretStr, *, context: str) -> str:
        """``kms1.<wrapped data key>.<sealed token>``."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(data_key).encrypt(nonce, plaintext.get_secret_value().encode("utf-8"), _aad(context))
        answer = self._call(
            "encrypt", {"plaintext": _b64(data_key), "additionalAuthenticatedData": _b64(_aad(context))}
        )
        wrapped = base64.b64decode(str(answer["ciphertext"]))
        return f"{FORMAT}.{_url64(wrapped)}.{_url64(nonce + sealed)}"

    def decrypt(self, stored: str, *, context: str) -> SecretStr:
        """The token, if KMS unwraps its data key for this context and the seal authenticates."""
        fmt, _, rest = stored.partition(".")
        wrapped_text, _, body = rest.partition(".")
        if fmt != FORMAT or not wrapped_text or not body:
            raise TokenDecryptionError("not a calsync kms1 token")
        try:
            wrapped, blob = _unurl64(wrapped_text), _unurl64(body)
        except (ValueError, binascii.Error) as exc:
            raise TokenDecryptionError("token is not base64url") from exc
        answer = self._call(
            "decrypt", {"ciphertext": _b64(wrapped), "additionalAuthenticatedData": _b64(_aad(context))}
        )
        data_key = base64.b64decode(str(answer["plaintext"]))
        try:
            plain = AESGCM(data_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(context))
        except (InvalidTag, ValueError) as exc:
            raise TokenDecryptionError("token does not authenticate (tampered or wrong context)") from exc
        return SecretStr(plain.decode("utf-8"))

    def needs_reencrypt(self, stored: str) -> bool:
        """Never: KMS rotates key versions itself and keeps the old ones for decryption."""
        return False

    def _call(self, method: str, body: dict[str, str]) -> dict[str, object]:
        url = f"{self._endpoint}/v1/{self._key}:{method}"
        try:
            answer = self._session.post(url, json=body, timeout=HTTP_TIMEOUT_S)
        except requests.RequestException as exc:
            raise errors.Transient("Cloud KMS is unreachable", reason="network") from exc
        if answer.status_code == 400 and method == "decrypt":
            raise TokenDecryptionError("Cloud KMS refused to unwrap the data key (wrong context or key)")
        if answer.status_code == 429 or answer.status_code >= 500:
            raise errors.Transient(f"Cloud KMS answered {answer.status_code}", reason="kms")
        if answer.status_code >= 400:
            raise errors.SecretUnavailable(
                f"Cloud KMS {method} refused ({answer.status_code}): check the key and its IAM"
            )
        data: dict[str, object] = answer.json()
        return data


def _aad(context: str) -> bytes:
    return f"calsync-token/{FORMAT}/{context}".encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _url64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _unurl64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))

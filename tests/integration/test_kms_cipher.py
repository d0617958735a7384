"""Envelope encryption with Cloud KMS (``adapters.kms_cipher``) over HTTP, tokens on Google's Firestore emulator.

There is no Cloud KMS emulator: a stand-in on 127.0.0.1 answers the two REST methods calsync uses
(``:encrypt``, ``:decrypt``) as KMS documents them — base64 JSON fields, ``additionalAuthenticatedData``
bound to the ciphertext, 400 when it does not match — holding its key material itself, as KMS does.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.kms_cipher import KmsEnvelopeCipher
from calsync.adapters.token_crypto import TokenDecryptionError
from calsync.adapters.token_store import EncryptedTokenStore

KEY = "projects/p/locations/southamerica-east1/keyRings/calsync-prod-tokens/cryptoKeys/calsync-prod-token-key"


@dataclass
class FakeKms:
    """What the stand-in holds and saw."""

    url: str
    calls: list[str] = field(default_factory=list)
    answer_status: int | None = None


@pytest.fixture
def kms() -> Iterator[FakeKms]:
    key = AESGCM(AESGCM.generate_key(bit_length=256))
    state = FakeKms(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name, _, method = self.path.removeprefix("/v1/").rpartition(":")
            state.calls.append(method)
            status, answer = self._answer(name, method, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, name: str, method: str, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
            if state.answer_status is not None:
                return state.answer_status, {"error": {"code": state.answer_status}}
            if name != KEY:
                return 404, {"error": {"code": 404, "message": "CryptoKey not found."}}
            aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
            if method == "encrypt":
                nonce = os.urandom(12)
                sealed = key.encrypt(nonce, base64.b64decode(body["plaintext"]), aad)
                return 200, {
                    "name": f"{KEY}/cryptoKeyVersions/1",
                    "ciphertext": base64.b64encode(nonce + sealed).decode(),
                }
            raw = base64.b64decode(body["ciphertext"])
            try:
                plain = key.decrypt(raw[:12], raw[12:], aad)
            except InvalidTag:
                return 400, {"error": {"code": 400, "message": "Decryption failed: the ciphertext is invalid."}}
            return 200, {"plaintext": base64.b64encode(plain).decode()}

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def cipher(kms: FakeKms, key: str = KEY) -> KmsEnvelopeCipher:
    return KmsEnvelopeCipher(key, requests.Session(), endpoint=kms.url)


def test_round_trip_with_a_data_key_per_token(kms: FakeKms) -> None:
    c = cipher(kms)
    first = c.encrypt(SecretStr("rt:a@x:1"), context="prod/oauth_token/clinic-1")
    second = c.encrypt(SecretStr("rt:a@x:1"), context="prod/oauth_token/clinic-1")
    assert first.startswith("kms1.")
    assert first.split(".")[1] != second.split(".")[1], "each token has its own wrapped data key"
    assert c.decrypt(first, context="prod/oauth_token/clinic-1").get_secret_value() == "rt:a@x:1"
    assert kms.calls == ["encrypt", "encrypt", "decrypt"]
    assert c.needs_reencrypt(first) is False


def test_another_context_or_a_tampered_token_does_not_decrypt(kms: FakeKms) -> None:
    c = cipher(kms)
    stored = c.encrypt(SecretStr("rt:a@x:1"), context="prod/oauth_token/clinic-1")
    with pytest.raises(TokenDecryptionError):
        c.decrypt(stored, context="prod/oauth_token/clinic-2")
    with pytest.raises(TokenDecryptionError):
        c.decrypt(stored, context="stg/oauth_token/clinic-1")
    head, wrapped, body = stored.split(".")
    flipped = base64.urlsafe_b64encode(
        bytes([base64.urlsafe_b64decode(body)[0] ^ 1]) + base64.urlsafe_b64decode(body)[1:]
    )
    with pytest.raises(TokenDecryptionError):
        c.decrypt(f"{head}.{wrapped}.{flipped.decode()}", context="prod/oauth_token/clinic-1")
    with pytest.raises(TokenDecryptionError):
        c.decrypt("v1.k1.abc", context="prod/oauth_token/clinic-1")


def test_kms_outages_are_transient_and_refusals_final(kms: FakeKms) -> None:
    kms.answer_status = 503
    with pytest.raises(errors.Transient):
        cipher(kms).encrypt(SecretStr("t"), context="c")
    kms.answer_status = 403
    with pytest.raises(errors.SecretUnavailable, match="IAM"):
        cipher(kms).encrypt(SecretStr("t"), context="c")
    kms.answer_status = None
    with pytest.raises(errors.SecretUnavailable):
        cipher(kms, key=KEY + "-other").encrypt(SecretStr("t"), context="c")


def test_the_token_store_keeps_only_the_envelope(kms: FakeKms, firestore_client: Any) -> None:
    store = EncryptedTokenStore(firestore_client, cipher(kms), environment="prod")
    store.put("clinic-1", SecretStr("rt:agenda@gmail.example:xyz"))
    document = firestore_client.collection("prod_oauth_tokens").document("clinic-1").get().to_dict()
    assert document["ciphertext"].startswith("kms1.")
    assert "agenda@gmail.example" not in str(document)
    token = store.get("clinic-1")
    assert token is not None
    assert token.get_secret_value() == "rt:agenda@gmail.example:xyz"

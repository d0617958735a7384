"""AES-GCM token encryption: round trip, tampering, context binding, key rotation, key secrets."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.secrets import EnvSecrets
from calsync.adapters.token_crypto import (
    AesGcmTokenCipher,
    KeyRing,
    TokenDecryptionError,
    fingerprint,
    generate_key,
)

TOKEN = SecretStr("1//0g-refresh-token-value")
CONTEXT = "dev/prof-1"


def ring(primary: str, **keys: str) -> KeyRing:
    return KeyRing.parse(SecretStr(json.dumps({"primary": primary, "keys": keys})))


@pytest.fixture
def cipher() -> AesGcmTokenCipher:
    return AesGcmTokenCipher(KeyRing.parse(SecretStr(generate_key())))


def test_round_trip(cipher: AesGcmTokenCipher) -> None:
    stored = cipher.encrypt(TOKEN, context=CONTEXT)

    assert cipher.decrypt(stored, context=CONTEXT).get_secret_value() == TOKEN.get_secret_value()
    assert TOKEN.get_secret_value() not in stored
    assert stored.startswith(f"v1.{cipher.primary_key_id}.")


def test_nonce_is_fresh_each_time(cipher: AesGcmTokenCipher) -> None:
    assert cipher.encrypt(TOKEN, context=CONTEXT) != cipher.encrypt(TOKEN, context=CONTEXT)


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_tampered_ciphertext_is_refused(cipher: AesGcmTokenCipher, position: int) -> None:
    prefix, key_id, body = cipher.encrypt(TOKEN, context=CONTEXT).split(".")
    blob = bytearray(base64.urlsafe_b64decode(body))
    blob[position] ^= 0x01
    tampered = f"{prefix}.{key_id}.{base64.urlsafe_b64encode(bytes(blob)).decode()}"

    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(tampered, context=CONTEXT)


def test_wrong_context_is_refused(cipher: AesGcmTokenCipher) -> None:
    stored = cipher.encrypt(TOKEN, context="dev/prof-1")

    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(stored, context="dev/prof-2")
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(stored, context="prod/prof-1")


@pytest.mark.parametrize("garbage", ["", "v1", "v2.k.abc", "v1..abc", "v1.k1.", "v1.k1.!!!", "v1.k1.YWJj"])
def test_malformed_tokens_are_refused(garbage: str) -> None:
    cipher = AesGcmTokenCipher(ring("k1", k1=generate_key()))

    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(garbage, context=CONTEXT)


def test_key_rotation() -> None:
    k1, k2 = generate_key(), generate_key()
    old = AesGcmTokenCipher(ring("k1", k1=k1))
    stored = old.encrypt(TOKEN, context=CONTEXT)

    rotated = AesGcmTokenCipher(ring("k2", k1=k1, k2=k2))
    assert rotated.decrypt(stored, context=CONTEXT).get_secret_value() == TOKEN.get_secret_value()
    assert rotated.needs_reencrypt(stored) is True

    fresh = rotated.reencrypt(stored, context=CONTEXT)
    assert fresh.startswith("v1.k2.")
    assert rotated.needs_reencrypt(fresh) is False

    retired = AesGcmTokenCipher(ring("k2", k2=k2))
    assert retired.decrypt(fresh, context=CONTEXT).get_secret_value() == TOKEN.get_secret_value()
    with pytest.raises(TokenDecryptionError):
        retired.decrypt(stored, context=CONTEXT)


def test_relabelled_key_id_is_refused() -> None:
    key = generate_key()
    cipher = AesGcmTokenCipher(ring("a", a=key, b=key))  # same key under two ids
    stored = cipher.encrypt(TOKEN, context=CONTEXT)

    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(stored.replace("v1.a.", "v1.b.", 1), context=CONTEXT)


def test_lone_key_id_is_its_fingerprint() -> None:
    key = generate_key()

    assert KeyRing.parse(SecretStr(key)).primary == fingerprint(base64.b64decode(key))


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        base64.b64encode(b"short").decode(),
        json.dumps({"primary": "k9", "keys": {"k1": generate_key()}}),
        json.dumps({"primary": "bad id", "keys": {"bad id": generate_key()}}),
        json.dumps({"keys": {}}),
        "{not json",
    ],
)
def test_bad_key_secrets_are_unavailable(value: str) -> None:
    with pytest.raises(errors.SecretUnavailable) as info:
        KeyRing.parse(SecretStr(value))
    assert value not in str(info.value) or len(value) < 12


def test_cipher_from_secrets() -> None:
    key = generate_key()
    secrets = EnvSecrets({"CALSYNC_SECRET_CALSYNC_TOKEN_KEY": key}, env_file=None)

    cipher = AesGcmTokenCipher.from_secrets(secrets, "calsync-token-key")

    assert cipher.primary_key_id == fingerprint(base64.b64decode(key))
    assert cipher.decrypt(cipher.encrypt(TOKEN, context=CONTEXT), context=CONTEXT) == TOKEN

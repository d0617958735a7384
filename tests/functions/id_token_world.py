"""Google-shaped ID tokens for function tests: a signing key, its certificate served on 127.0.0.1.

``certs_server`` serves the certificate like Google's endpoint does (``Cache-Control: public,
max-age=...``), counts the fetches and points ``adapters.id_tokens`` at itself; ``id_token`` signs
claims the way Google does (``iss``, ``aud``, ``email``, ``email_verified``, ``iat``, ``exp``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from calsync.adapters import id_tokens


def _key_and_cert() -> tuple[crypt.RSASigner, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    # google-auth checks certificates and tokens against the wall clock itself: they must be valid now.
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return crypt.RSASigner.from_string(pem, key_id="k1"), cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class CertsServer:
    """The signer of tokens the served certificate verifies, and how often it was fetched."""

    signer: crypt.RSASigner
    fetches: list[str] = field(default_factory=list)


@pytest.fixture
def certs_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CertsServer]:
    signer, cert = _key_and_cert()
    payload = json.dumps({"k1": cert}).encode()
    served = CertsServer(signer)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=20000, must-revalidate, no-transform")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(id_tokens, "CERTS_URL", f"http://127.0.0.1:{server.server_port}/certs")
    yield served
    server.shutdown()


def id_token(signer: crypt.RSASigner, email: str, audience: str, **claims: Any) -> str:
    """A Google-shaped ID token signed by ``signer``."""
    # The same for the ID token: google-auth compares iat/exp with the real clock (with its own skew).
    now = int(time.time())
    body = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
        "sub": "1",
        **claims,
    }
    return jwt.encode(signer, body).decode()

"""Fixtures shared by the function tests."""

from __future__ import annotations

from tests.functions.id_token_world import certs_server

__all__ = ["certs_server"]

"""Answers of the clinic-connection routes (``calsync.http.connections``), shared with the CLI."""

from __future__ import annotations

from calsync.results import AuditFields, IsoTime, Result


class ConnectionStarted(Result):
    """``POST /clinics/{id}/connection``: open ``consent_url`` as the clinic's Google account."""

    clinic_id: str
    consent_url: str
    expires_at: IsoTime
    scopes: list[str]


class ClinicConnected(Result):
    """``GET /oauth/callback``: the clinic's account is connected; calendars back from ``needs_reauth``."""

    clinic_id: str
    connected: bool
    calendars_reauthorised: int

    def audit(self) -> AuditFields:
        """The calendars put back to ``ok``."""
        return {"calendars_reauthorised": self.calendars_reauthorised}


class ClinicDisconnected(Result):
    """``DELETE /clinics/{id}/connection``: the grant was revoked at Google (or there was none)."""

    clinic_id: str
    revoked: bool

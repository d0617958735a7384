"""Connecting a clinic's own Google account (clinics without Workspace): start, callback, disconnect.

``POST /clinics/{clinic_id}/connection`` (admin) answers Google's consent URL; the clinic's account
consents and Google sends the browser to ``GET /oauth/callback`` (public: the signed, short-lived
``state`` is what authorises it, see ``adapters.oauth_connect``), which stores the refresh token
encrypted and puts the clinic's calendars that needed re-authorisation back to ``ok``.
``DELETE /clinics/{clinic_id}/connection`` revokes the grant at Google and forgets the token.
"""

from __future__ import annotations

from flask_openapi3.blueprint import APIBlueprint
from pydantic import BaseModel, ConfigDict, Field

from calsync.adapters.oauth_connect import CONNECT_SCOPES
from calsync.bootstrap import get_container
from calsync.http.auth import operation
from calsync.http.configs import publish_store
from calsync.http.docs import blueprint_options
from calsync.http.schemas import ClinicPath
from calsync.results_connections import ClinicConnected, ClinicDisconnected, ConnectionStarted

api = APIBlueprint("connections", __name__, **blueprint_options("connections"))
callback = APIBlueprint("oauth", __name__, **blueprint_options("connections", admin=False))
REAUTH_PAGE = 500


class ConnectQuery(BaseModel):
    """The Google account to preselect on the consent screen (optional)."""

    model_config = ConfigDict(extra="forbid")

    login_hint: str = Field(default="", max_length=320)


class CallbackQuery(BaseModel):
    """What Google appends to the redirect URI."""

    model_config = ConfigDict(extra="ignore")

    state: str = Field(min_length=1, max_length=4096)
    code: str = Field(default="", max_length=2048)
    error: str = Field(default="", max_length=256)


@api.post(
    "/clinics/<clinic_id>/connection",
    responses={201: ConnectionStarted},
    summary="Start connecting a clinic's own Google account (OAuth consent)",
)
@operation(audit=True)
def start_connection(path: ClinicPath, query: ConnectQuery) -> tuple[ConnectionStarted, int]:
    """Google's consent URL for the clinic (short-lived, bound to clinic and environment)."""
    started = get_container().clinic_accounts.connections.start(path.clinic_id, login_hint=query.login_hint)
    answer = ConnectionStarted(
        clinic_id=started.clinic_id,
        consent_url=started.consent_url,
        expires_at=started.expires_at,
        scopes=list(CONNECT_SCOPES),
    )
    return answer, 201


@api.delete(
    "/clinics/<clinic_id>/connection",
    responses={200: ClinicDisconnected},
    summary="Disconnect a clinic's Google account (revoke and forget its token)",
)
@operation(audit=True)
def delete_connection(path: ClinicPath) -> tuple[ClinicDisconnected, int]:
    """Revoke the clinic's grant at Google and delete its stored token."""
    revoked = get_container().clinic_accounts.connections.disconnect(path.clinic_id)
    return ClinicDisconnected(clinic_id=path.clinic_id, revoked=revoked), 200


@callback.get("/oauth/callback", responses={200: ClinicConnected}, summary="Google's consent comes back here")
@operation("public", audit=True)
def oauth_callback(query: CallbackQuery) -> tuple[ClinicConnected, int]:
    """Redeem the consent's code, store the token encrypted, re-enable the clinic's calendars."""
    c = get_container()
    clinic_id = c.clinic_accounts.connections.complete(state=query.state, code=query.code, error=query.error)
    store = publish_store(c)
    waiting = [r for r in store.list_calendars_by_status("needs_reauth", limit=REAUTH_PAGE) if r.clinic_id == clinic_id]
    for record in waiting:
        store.update_calendar(record.key, {"status": "ok", "error_message": None, "backoff_until": None})
    return ClinicConnected(clinic_id=clinic_id, connected=True, calendars_reauthorised=len(waiting)), 200

"""Cloud Function ``publish``: calsync's admin API (bearer token) and the publish task target.

The API lives in ``calsync.http`` (flask-openapi3: one blueprint per area, typed requests and answers,
the OpenAPI document at ``GET /openapi.json``); this entry point hands each request to it at the
edge (``calsync.http.edge``: log context, summary line, errors → answers).
"""

from __future__ import annotations

import flask
import functions_framework

from calsync.http import app, edge


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Serve one admin (or publish task) request."""
    return edge.serve("publish", request, app.handle, message="publish.request")

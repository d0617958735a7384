"""The admin API as a flask-openapi3 app, and how the ``publish`` Cloud Function hands it a request.

functions-framework builds its own Flask app and calls the target with a ``flask.Request``, so an
ASGI app (FastAPI) cannot be the target; flask-openapi3's ``OpenAPI`` is a Flask app, so it can run
inside the function. ``handle`` pushes the admin app's request context on the same WSGI environ and
runs ``full_dispatch_request()``: routing, CORS, the views (auth, then validation, then the use case),
and the error handlers below, which answer through ``calsync.http.edge`` like the other functions.

- Routing: 404 ``not_found`` for no route, 405 ``method_not_allowed``; both with the envelope.
- Validation: flask-openapi3 validates paths, queries, headers and bodies against
  ``calsync.http.schemas``; a failure is 400 ``invalid_request`` with ``details.fields``.
- JSON bodies are read whatever their ``Content-Type`` (as before the library).
- CORS: the origins in ``Settings.cors_origins`` (none by default: browsers are refused); bearer
  tokens, no cookies. One app is built per origin list and kept for the process.
- ``GET /openapi.json`` serves the document the library generates from the blueprints; the
  committed ``docs/openapi.json`` is ``render_document()`` (``scripts/openapi.py``).
"""

from __future__ import annotations

import functools
import io
import json
from typing import Any

import flask
from flask_cors import CORS
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as HttpMethodNotAllowed
from werkzeug.exceptions import NotFound as HttpNotFound

from calsync import errors
from calsync.bootstrap import Container
from calsync.http import calendars, conflicts, connections, directory, edge, events, publish, tasks
from calsync.http.auth import VERIFIER_KEY, GoogleIdTokens, TokenVerifier, operation
from calsync.http.docs import blueprint_options
from calsync.http.schemas import ErrorBody
from calsync.results import OpenApiDocument

TITLE = "calsync admin API"
TASK_ENDPOINT = "tasks.apply_task"
CORS_HEADERS = ["Authorization", "Content-Type", "If-Match"]

docs = APIBlueprint("docs", __name__, **blueprint_options("docs", admin=False))


@docs.get("/openapi.json", responses={200: OpenApiDocument}, summary="This document")
@operation("public")
def get_openapi() -> tuple[OpenApiDocument, int]:
    """The OpenAPI document of this API."""
    app: OpenAPI = flask.current_app  # type: ignore[assignment]
    return OpenApiDocument.model_validate(app.api_doc), 200


class JsonRequest(flask.Request):
    """A request whose JSON body is read whatever its ``Content-Type``."""

    def get_json(self, force: bool = True, silent: bool = False, cache: bool = True) -> Any:
        """The body as JSON (``force`` defaults to True)."""
        return super().get_json(force=True, silent=silent, cache=cache)


def _task_request() -> bool:
    return flask.request.endpoint == TASK_ENDPOINT and edge.from_task(flask.request)


def _calsync_error(exc: errors.CalsyncError) -> flask.Response:
    return edge.error_response(exc, task=_task_request())


def _http_error(exc: HTTPException) -> flask.Response:
    if exc.response is not None:  # an answer already made (a validation error)
        return exc.response  # type: ignore[return-value]
    if isinstance(exc, HttpNotFound):
        return edge.error_response(errors.UnknownResource("no such route"), task=False)
    if isinstance(exc, HttpMethodNotAllowed):
        return edge.error_response(errors.MethodNotAllowed("method not allowed on this route"), task=False)
    refused = errors.InvalidRequest(exc.description or "invalid request")
    edge.current_summary().update(status="rejected", http_status=exc.code, error_code=refused.code)
    return edge.json_response(edge.envelope(refused.code, refused.message), exc.code or 400)


def _validation_error(exc: ValidationError) -> flask.Response:
    fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
    refused = errors.InvalidRequest("invalid request", details={"fields": fields})
    return edge.error_response(refused, task=_task_request())


def _summarize() -> None:
    rule = flask.request.url_rule
    if rule is not None:
        edge.current_summary().update(route=rule.rule, method=flask.request.method)


def create_app(*, cors_origins: tuple[str, ...] = (), verifier: TokenVerifier | None = None) -> OpenAPI:
    """The admin API app: every blueprint, the error handlers, CORS for ``cors_origins``."""
    app = OpenAPI(
        __name__,
        info=Info(title=TITLE, version="1"),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        validation_error_status=400,
        validation_error_model=ErrorBody,
        validation_error_callback=_validation_error,
        doc_ui=False,
    )
    app.request_class = JsonRequest
    app.url_map.merge_slashes = False  # a path is matched as given: "/a//b" is no route
    app.extensions[VERIFIER_KEY] = verifier or GoogleIdTokens()
    blueprints = (calendars.api, events.api, conflicts.api, directory.api, connections.api, connections.callback)
    for blueprint in (*blueprints, publish.api, tasks.api, docs):
        app.register_api(blueprint)
    app.register_error_handler(errors.CalsyncError, _calsync_error)
    app.register_error_handler(HTTPException, _http_error)
    app.before_request(_summarize)
    if cors_origins:
        CORS(app, origins=list(cors_origins), allow_headers=CORS_HEADERS, expose_headers=["Retry-After"])
    return app


@functools.cache
def admin_app(cors_origins: tuple[str, ...] = ()) -> OpenAPI:
    """The process's admin app for an origin list (built once)."""
    return create_app(cors_origins=cors_origins)


def handle(container: Container, request: flask.Request) -> flask.Response:
    """Serve one request of the publish function with the admin app (on a copy of its WSGI environ).

    The body is read once through functions-framework's request, which caches it (functions-framework
    drains that request after the target returns), and handed to the admin app as a fresh stream.
    """
    app = admin_app(tuple(container.settings.cors_origins))
    data = request.get_data()
    environ = {**request.environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
    with app.request_context(environ):
        return app.full_dispatch_request()


def render_document() -> str:
    """The OpenAPI document as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(admin_app().api_doc, indent=2, sort_keys=True) + "\n"

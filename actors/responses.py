"""The response envelope and snake/camel case conversion, in one place for every web app."""
from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from actors import errors
from actors.config import conf, tag
from actors.errors import AbacoError

log = logging.getLogger(__name__)

SUCCESS_MESSAGE = "The request was successful"

# The HTTP status of each error, the first class of an error's MRO listed here wins. Upstream answers
# 400 for almost everything (auth and permission failures included) and for the lookups of
# executions, nonces and permission maps; those codes are kept (docs/compatibility.md).
HTTP_STATUS: dict[type, int] = {
    errors.ExecutionNotFound: 400,
    errors.NonceNotFound: 400,
    errors.PermissionsNotFound: 400,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    AbacoError: 400,
}


def http_status(e: AbacoError) -> int:
    return next(HTTP_STATUS[cls] for cls in type(e).__mro__ if cls in HTTP_STATUS)


def case() -> str:
    return conf().get("web", "case", "snake").strip().lower()


def to_camel(name: str) -> str:
    """``a_b_c`` -> ``aBC``: first segment lower, the following segments capitalised."""
    if name.startswith("_"):
        return name
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def convert_model(obj: dict) -> dict:
    """Top-level case conversion of a model object. In camel mode upstream drops null values
    (a quirk clients see, so we keep it); nested objects are never converted."""
    if case() != "camel":
        return obj
    return {to_camel(k): v for k, v in obj.items() if v is not None}


def convert_keys(obj: dict) -> dict:
    """Plain top-level conversion that keeps null values (message POST, admin listings)."""
    if case() != "camel":
        return obj
    return {to_camel(k): v for k, v in obj.items()}


def envelope(result: Any, message: str, status: str) -> dict:
    return {"result": result, "status": status, "message": message, "version": tag()}


def ok(result: Any = None, msg: str = SUCCESS_MESSAGE) -> Response:
    return jsonify(envelope(result, msg, "success"))


def error(msg: str, status_code: int = 400) -> Response:
    response = jsonify(envelope(None, msg, "error"))
    response.status_code = status_code
    return response


def new_app(name: str) -> Flask:
    """A Flask app with the envelope error handlers, permissive CORS and lenient trailing slashes."""
    from flask_cors import CORS

    app = Flask(name)
    app.url_map.strict_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = conf().get_int("web", "max_content_length", 500_000_000) + 65536
    CORS(app)
    install_error_handlers(app)
    return app


def install_error_handlers(app: Flask) -> None:
    """Every error leaves as the envelope; unexpected ones as upstream's 500 message."""

    @app.errorhandler(AbacoError)
    def handle_abaco_error(e: AbacoError) -> Response:
        return error(e.message, http_status(e))

    @app.errorhandler(HTTPException)
    def handle_http_error(e: HTTPException) -> Response:
        # upstream answered 405 for unknown paths too; a path no route serves is a 404 here
        if e.code == 404:
            return error("Invalid endpoint: no resource at this path.", 404)
        if e.code == 405:
            return error("Invalid endpoint or method combination.", 405)
        if e.code == 413:
            return error(f"The request body is larger than the limit of {app.config['MAX_CONTENT_LENGTH']} bytes.", 413)
        return error(e.description or e.name, e.code or 400)

    @app.errorhandler(Exception)
    def handle_unexpected(e: Exception) -> Response:
        trace = traceback.format_exc()
        log.error("unexpected error: %s\n%s", e, trace)
        if conf().get_bool("web", "show_traceback", False):
            # upstream re-raised, and Flask's generic 500 page hid the traceback from the client
            # anyway; we answer with the traceback itself, which is what the option is for
            return Response(trace, status=500, mimetype="text/plain")
        return error(f"Unrecognized exception type: {type(e).__name__}. Exception: {e}", 500)

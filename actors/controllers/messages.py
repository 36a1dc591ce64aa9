"""Messages: the hot path that feeds actors."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, g, request

from actors import channels, codes
from actors.config import conf
from actors.controllers.authz import identity
from actors.controllers.base import json_body
from actors.controllers.workers import ensure_one_worker
from actors.errors import ResourceError
from actors.models import (
    Actor,
    Execution,
    links_base,
)
from actors.responses import convert_keys, ok

log = logging.getLogger(__name__)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def parse_message() -> tuple[Any, str]:
    """The message and its content type, by upstream's first-match rules (API ref §8.6)."""
    body = None
    message_field = request.args.get("message")
    if request.mimetype in FORM_TYPES:  # reading the form of any other body would read the body
        message_field = message_field or request.form.get("message")
    if request.is_json:
        body = json_body()
        if isinstance(body, dict) and body.get("message"):
            message_field = body["message"]
    if message_field:
        return str(message_field), codes.CONTENT_STR
    if request.mimetype == codes.CONTENT_BINARY and request.content_type.split(";")[0].strip() == codes.CONTENT_BINARY:
        return binary_body(), codes.CONTENT_BINARY
    if request.is_json and body:
        return body, codes.CONTENT_JSON
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw), codes.CONTENT_STR
    except (ValueError, UnicodeDecodeError):
        raise ResourceError(
            "The request body could not be serialized. Pass JSON or a 'message' field "
            "(form, query parameter or JSON key)."
        ) from None


def binary_body() -> bytes:
    length = request.headers.get("Content-Length")
    if length is None:
        raise ResourceError("A Content-Length header is required for binary messages.")
    try:
        size = int(length)
    except ValueError:
        raise ResourceError("The Content-Length header must be an integer.") from None
    limit = conf().get_int("web", "max_content_length", 500_000_000)
    if size > limit:
        raise ResourceError(f"The binary message is {size} bytes; the limit is {limit} bytes.")
    return request.get_data(cache=False)


def send_message(actor_id: str) -> Response:
    ident = identity()
    actor = Actor.get(g.dbid)
    message, content_type = parse_message()
    meta = {k: v for k, v in request.args.items() if k != "message"}
    meta.update(_abaco_username=ident.user, _abaco_api_server=actor["api_server"])
    if ident.jwt_header_name:
        meta["_abaco_jwt_header_name"] = ident.jwt_header_name
    execution = Execution.create(actor, ident.user)
    meta.update(_abaco_execution_id=execution["id"], _abaco_Content_Type=content_type)
    channels.ActorMsgChannel(actor["db_id"]).put_msg(message, meta)
    ensure_one_worker(actor)
    base = links_base(actor["api_server"])
    result = {
        "execution_id": execution["id"],
        "msg": "binary - omitted" if content_type == codes.CONTENT_BINARY else message,
        "_links": {
            "self": f"{base}/{actor['id']}/executions/{execution['id']}",
            "owner": f"{actor['api_server']}/profiles/v2/{actor['owner']}",
            "messages": f"{base}/{actor['id']}/messages",
        },
    }
    return ok(convert_keys(result))


def messages_links(actor: dict) -> dict:
    base = links_base(actor["api_server"])
    return {
        "self": f"{base}/{actor['id']}/messages",
        "owner": f"{actor['api_server']}/profiles/v2/{actor['owner']}",
    }


def count_messages(actor_id: str) -> Response:
    actor = Actor.get(g.dbid)
    count = channels.queue_message_count(channels.actor_queue_name(actor["db_id"]))
    return ok({"messages": count, "_links": messages_links(actor)})


def purge_messages(actor_id: str) -> Response:
    """Remove the queued (not yet delivered) messages. Upstream left their executions SUBMITTED
    forever; we finalize each as COMPLETE with a ``final_state`` that says it was purged. A message
    a worker already holds is running and is not purged."""
    actor = Actor.get(g.dbid)
    for message in channels.ActorMsgChannel(actor["db_id"]).drain():
        execution_id = message.get("_abaco_execution_id") if isinstance(message, dict) else None
        if execution_id:
            Execution.mark_purged(actor["db_id"], execution_id)
    return ok({"msg": "Actor mailbox purged.", "_links": messages_links(actor)}, "Mailbox purged successfully.")

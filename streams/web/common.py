"""What every endpoint module shares: request parsing and the 400 error type."""

from __future__ import annotations

from typing import Any

import orjson
from faust import web


class BadRequest(ValueError):
    """The request is malformed; the message is returned to the client with HTTP 400."""


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body

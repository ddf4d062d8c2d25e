"""``POST /api/v1/scan``: packages → the assessor's results (the objects ``scan --format json`` prints).

Bodies, as JSON or as a form (``application/x-www-form-urlencoded``, what k6 sends for a plain
object):

- ``{"registry": "npm", "names": ["expresss", "ua-parser-js@0.7.29"]}`` — names may carry a
  version (``NAME@VERSION`` for npm, ``NAME==VERSION`` for PyPI); a form repeats ``names`` or
  separates them with commas;
- ``{"package_name": "ua-parser-js", "version": "0.7.29", "registry": "npm"}`` (``name`` works for
  ``package_name``; ``version`` applies to that one package).

One of ``names``, ``package_name`` and ``name`` per request: a body with two of them is a 400.

``registry`` defaults to ``Settings.scan_default_registry`` (``TYPOSTREAM_SCAN_DEFAULT_REGISTRY``,
``npm``). Answers ``{"results": [{"name", "version", "registry", "verdict", "threats"}]}``; 400
with ``{"error": ...}`` on a bad body.

Unlike ``/api/v1/query``, this endpoint must not require ``application/json``: load tests post
forms. A cross-site form post gains nothing here: scanning changes no state, and the answer is not
readable by the posting page (no CORS); the token and ``Host`` checks still apply (the API guard).

Served by the worker (:func:`register`, a Faust view) and by ``typostream api`` (:func:`handler`, a
plain aiohttp handler, no Kafka): both answer through :func:`scan_answer`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web as aiohttp_web
from faust import web

from typostream.agents.domain.errors import PackageSpecError
from typostream.agents.domain.manifests import parse_spec
from typostream.agents.domain.vocabulary import REGISTRIES
from typostream.streams.web.common import BadRequest

if TYPE_CHECKING:
    from typostream.agents.domain.assess import Assessor
    from typostream.streams.app import WorkerApp

MAX_SCAN_NAMES = 1000
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The body as ``{field: value}``; a form's repeated or comma-separated ``names`` become a list."""
    if content_type.split(";", 1)[0].strip().lower() == FORM:
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"request body is not a UTF-8 form: {exc}") from exc
        body: dict[str, Any] = {key: values[-1] for key, values in fields.items()}
        if "names" in fields:
            body["names"] = [n.strip() for value in fields["names"] for n in value.split(",") if n.strip()]
        return body
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not JSON or a form: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def scan_request(raw: bytes, content_type: str, default_registry: str) -> list[tuple[str, str, str | None]]:
    """``[(registry, name, version | None)]`` of a request; BadRequest with a message for the client."""
    body = _body(raw, content_type)
    registry = body.get("registry")
    if registry is None or registry == "":  # absent, JSON null or a blank form field: the default
        registry = default_registry
    if registry not in REGISTRIES:
        raise BadRequest(f"'registry' must be one of: {', '.join(REGISTRIES)}")
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        raise BadRequest("'version' must be a string")
    ways = [key for key in ("names", "package_name", "name") if key in body]
    if len(ways) > 1:  # answering for one of them would leave the other unscanned without a word
        raise BadRequest(
            f"give one of 'names', 'package_name' or 'name', not {' and '.join(map(repr, ways))}"
        )
    single = body.get("package_name", body.get("name"))
    if "names" in body:
        names = body["names"]
        if version and isinstance(names, list) and len(names) != 1:
            raise BadRequest("'version' applies to one package; give versions in 'names' (NAME@VERSION)")
    else:
        names = [single] if single is not None else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise BadRequest("'names' must be a non-empty list of package names (or give 'package_name')")
    if len(names) > MAX_SCAN_NAMES:
        raise BadRequest(f"at most {MAX_SCAN_NAMES} names per request")
    packages = []
    for spec in names:
        try:
            name, pinned = parse_spec(spec, registry)
        except PackageSpecError as exc:
            raise BadRequest(str(exc)) from exc
        if version and pinned and pinned != version.strip():
            raise BadRequest(f"{spec!r} names version {pinned}, 'version' says {version}")
        packages.append((registry, name, pinned or (version or "").strip() or None))
    return packages


def scan_answer(
    raw: bytes, content_type: str, assessor: Assessor, default_registry: str
) -> tuple[int, bytes]:
    """(HTTP status, JSON body) of a scan request: 200 with the results, or 400 with the error."""
    try:
        packages = scan_request(raw, content_type, default_registry)
    except BadRequest as exc:
        return 400, orjson.dumps({"error": str(exc)})
    return 200, orjson.dumps({"results": [assessor.assess(n, r, v).to_dict() for r, n, v in packages]})


def handler(
    assessor: Assessor, default_registry: str
) -> Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.Response]]:
    """The endpoint as a plain aiohttp handler (``typostream api``)."""

    async def scan(request: aiohttp_web.Request) -> aiohttp_web.Response:
        raw = await request.read()
        status, body = scan_answer(raw, request.headers.get("Content-Type", ""), assessor, default_registry)
        return aiohttp_web.Response(body=body, status=status, content_type=JSON)

    return scan


def register(worker: WorkerApp) -> None:
    app, assessor = worker.app, worker.assessor
    default_registry = worker.settings.scan_default_registry

    @app.page("/api/v1/scan")
    class Scan(web.View):
        async def post(self, request: web.Request) -> web.Response:
            raw = await request.read()
            status, body = scan_answer(
                raw, request.headers.get("Content-Type", ""), assessor, default_registry
            )
            return self.bytes(body, content_type=JSON, status=status)

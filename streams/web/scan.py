"""``POST /api/v1/scan``: ``{"registry": "npm", "names": ["expresss"]}`` → the assessor's results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust import web

from typostream.agents.domain.vocabulary import REGISTRIES
from typostream.streams.web.common import BadRequest, json_body

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

MAX_SCAN_NAMES = 1000


def scan_request(body: dict[str, Any]) -> tuple[str, list[str]]:
    """Validate a scan request body; raises BadRequest with a message for the client."""
    registry = body.get("registry")
    if registry not in REGISTRIES:
        raise BadRequest(f"'registry' must be one of: {', '.join(REGISTRIES)}")
    names = body.get("names", [body["name"]] if "name" in body else None)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise BadRequest("'names' must be a non-empty list of package names (or give 'name')")
    if len(names) > MAX_SCAN_NAMES:
        raise BadRequest(f"at most {MAX_SCAN_NAMES} names per request")
    return registry, names


def register(worker: WorkerApp) -> None:
    app = worker.app

    @app.page("/api/v1/scan")
    class Scan(web.View):
        async def post(self, request: web.Request) -> web.Response:
            try:
                registry, names = scan_request(await json_body(request))
            except BadRequest as exc:
                return self.error(400, str(exc))
            return self.json({"results": [worker.assessor.assess(n, registry).to_dict() for n in names]})

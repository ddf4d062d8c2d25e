"""``GET /openapi.json``: the HTTP API's OpenAPI document, ``schemas/openapi.yaml`` served as JSON.

The YAML is the one source (the fault suite's schemathesis run reads it too); it is read when first
asked for and again whenever the file changes, so an edited document needs no restart. No token
needed: the document describes the API, it holds no data. Without the file the answer is 404 with
where it should be.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from faust import web

from typostream.agents.domain.errors import ConfigError

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

__all__ = ["PUBLIC_PATHS", "OpenApiDocument", "document_path", "register"]

PUBLIC_PATHS = frozenset({"/openapi.json"})


def document_path() -> Path:
    return Path(str(resources.files("typostream.schemas").joinpath("openapi.yaml")))


class OpenApiDocument:
    """The YAML file as JSON bytes, re-read when its mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._json = b""

    def json(self) -> bytes | None:
        """The document as JSON, None when the file does not exist; ConfigError when it is not an
        OpenAPI document (unparsable YAML, not a mapping, no ``openapi`` version)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._json = orjson.dumps(self._load())
                self._stamp = stamp
            return self._json

    def _load(self) -> dict[str, Any]:
        try:
            document = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{self.path}: not readable as YAML: {exc}") from exc
        if not isinstance(document, dict) or "openapi" not in document:
            raise ConfigError(f"{self.path}: not an OpenAPI document (no top-level 'openapi' field)")
        # JSON has no dates: YAML timestamps (e.g. in examples) become strings, as written.
        return orjson.loads(orjson.dumps(document, default=str))


def register(worker: WorkerApp) -> None:
    document = OpenApiDocument(document_path())

    @worker.app.page("/openapi.json")
    class OpenApi(web.View):
        async def get(self, request: web.Request) -> web.Response:
            try:
                body = document.json()
            except ConfigError as exc:
                return self.json({"error": str(exc)}, status=500)
            if body is None:
                return self.json(
                    {"error": f"no OpenAPI document: {document.path} does not exist"}, status=404
                )
            return self.bytes(body, content_type="application/json")

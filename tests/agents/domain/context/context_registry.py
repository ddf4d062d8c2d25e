"""A local npm + PyPI registry serving the context fixtures (127.0.0.1; tests only).

npm: ``/<name>/<version>`` (version documents), ``/<name>`` (packuments), ``/<name>/latest``;
PyPI: ``/pypi/<name>/json`` (project) and ``/pypi/<name>/<version>/json``. ``lodahs`` has a
one-version packument built from its version document; ``@legacy/pkg`` refuses per-version routes
(401, as npm did for scoped names) and serves its packument. ``/garbage`` answers HTML,
``/broken`` a packument without ``versions``, ``/pypi/badinfo/json`` a project whose ``info`` is
no object. ``hits`` counts requests per path.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.agents.enrichment.fixture_registry import LEGACY_SCOPED, garbage, registry_app

HERE = Path(__file__).parent / "fixtures"
ENRICHMENT = Path(__file__).resolve().parents[2] / "enrichment" / "fixtures"
HITS: web.AppKey[Counter[str]] = web.AppKey("context_hits", Counter)


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _packument_of(version_doc: dict[str, Any], created: str) -> dict[str, Any]:
    version = version_doc["version"]
    return {
        "_id": version_doc["name"],
        "name": version_doc["name"],
        "dist-tags": {"latest": version},
        "versions": {version: version_doc},
        "time": {"created": created, version: created, "modified": created},
        "maintainers": version_doc.get("maintainers", []),
    }


def routes() -> dict[str, Any]:
    ok: dict[str, Any] = {}
    for file in ("npm_acme-internal-auth_packument.json", "npm_event-streamer_packument.json",
                 "npm_tiny-date-fmt_packument.json", "npm_esbuild_packument.json"):  # fmt: skip
        packument = _load(HERE / file)
        name = packument["name"]
        ok[f"/{name}"] = packument
        ok[f"/{name}/latest"] = packument["versions"][packument["dist-tags"]["latest"]]
        for version, doc in packument["versions"].items():
            ok[f"/{name}/{version}"] = doc
    lodahs = _load(HERE / "npm_lodahs_4.17.21.json")
    ok["/lodahs/4.17.21"] = lodahs
    ok["/lodahs"] = _packument_of(lodahs, "2026-11-25T10:01:00.000Z")
    ok["/lodash/latest"] = _load(HERE / "npm_lodash_latest.json")
    ok["/cross-env/latest"] = _load(HERE / "npm_cross-env_latest.json")
    ok["/left-pad/1.3.0"] = _load(ENRICHMENT / "npm_left-pad_1.3.0.json")
    ok["/express/4.18.2"] = _load(HERE / "npm_express_4.18.2.json")
    ok[LEGACY_SCOPED] = _load(ENRICHMENT / "npm_legacy_packument.json")
    ok["/broken"] = {"name": "broken", "versions": []}
    ok["/pypi/badinfo/json"] = {"info": "not an object", "releases": {}}
    for file in (
        "pypi_reqeusts-toolbelt_project.json",
        "pypi_flask_project.json",
        "pypi_tinyhttpcache_project.json",
    ):
        project = _load(HERE / file)
        name = project["info"]["name"].lower()
        ok[f"/pypi/{name}/json"] = project
        for version, files in project["releases"].items():
            ok[f"/pypi/{name}/{version}/json"] = {**project, "urls": files, "releases": None}
    return ok


def make_app() -> web.Application:
    return registry_app(routes(), HITS, {"/garbage": garbage})

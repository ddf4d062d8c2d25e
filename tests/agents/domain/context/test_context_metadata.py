"""What the context reads from the registries: packuments and PyPI project documents parsed into
``PackageHistory``, release times, and ``RegistryClient.fetch_latest`` / ``fetch_history`` against a
local fixture registry (127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests.agents.domain.context.context_registry import ENRICHMENT, HERE, HITS, make_app
from typostream.agents.adapters.registry import RegistryClient
from typostream.agents.domain.errors import UpstreamResponseError
from typostream.agents.domain.metadata import (
    PackageHistory,
    PackageMetadata,
    Release,
    parse_npm_packument,
    parse_pypi,
    parse_pypi_project,
)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_npm_packument_history() -> None:
    history = parse_npm_packument(load(HERE / "npm_event-streamer_packument.json"), "event-streamer")
    assert history.created_at == "2011-08-21T11:03:57.512Z"
    assert [r.version for r in history.releases] == ["3.3.1", "3.3.2", "3.3.3", "3.3.4", "3.3.5", "3.3.6"]
    assert history.release("3.3.6") == Release("3.3.6", "2018-09-16T10:00:00.000Z", "right9ctrl")
    assert [r.version for r in history.before("3.3.6")] == ["3.3.1", "3.3.2", "3.3.3", "3.3.4", "3.3.5"]
    assert history.before("3.3.1") == () and history.maintainers == ("right9ctrl",)
    assert history.latest is not None and history.latest.version == "3.3.6"
    assert history.latest.published_at == "2018-09-16T10:00:00.000Z"
    assert history.latest.repository == "git://github.com/dominictarr/event-streamer.git"


def test_pypi_project_history_and_release_times() -> None:
    history = parse_pypi_project(load(HERE / "pypi_flask_project.json"), "flask")
    assert history.created_at == "2010-04-16T14:56:28.138131Z"
    assert [r.version for r in history.releases] == ["0.1", "1.0", "2.0.0", "2.3.3", "3.0.0"]
    assert history.latest is not None and history.latest.name == "Flask" and history.latest.version == "3.0.0"
    owned = parse_pypi_project(load(HERE / "pypi_reqeusts-toolbelt_project.json"), "reqeusts-toolbelt")
    assert owned.maintainers == ("pkgmaker8812",)  # ownership roles: accounts, not free text
    assert owned.latest is not None and owned.latest.package_types == ("sdist",)
    requests = parse_pypi(load(ENRICHMENT / "pypi_requests_2.31.0.json"), "requests", "2.31.0")
    assert requests.published_at == "2023-05-22T15:12:42.313790Z"  # the first file's upload


def test_histories_round_trip_through_the_cache_encoding() -> None:
    for history in (
        parse_npm_packument(load(HERE / "npm_acme-internal-auth_packument.json"), "acme-internal-auth"),
        parse_pypi_project(load(HERE / "pypi_tinyhttpcache_project.json"), "tinyhttpcache"),
        PackageHistory("npm", "empty"),
    ):
        assert PackageHistory.from_dict(orjson.loads(orjson.dumps(history))) == history
    meta = PackageMetadata("pypi", "x", "1", published_at="2026-01-01T00:00:00Z")
    assert PackageMetadata.from_dict(orjson.loads(orjson.dumps(meta))) == meta
    # an entry cached before the field existed still decodes
    old = {k: v for k, v in meta.to_dict().items() if k != "published_at"}
    assert PackageMetadata.from_dict(old).published_at is None


@pytest.mark.parametrize(
    "doc", [None, [], {"name": "x"}, {"name": "x", "versions": []}, {"versions": {}, "time": "soon"}]
)
def test_malformed_packuments_are_value_errors_or_empty(doc: object) -> None:
    try:
        history = parse_npm_packument(doc, "x")
    except ValueError:
        return
    assert history.releases == () and history.latest is None


@pytest.mark.parametrize("doc", [None, {"releases": {}}, {"info": "x"}])
def test_malformed_pypi_projects_are_value_errors(doc: object) -> None:
    with pytest.raises(ValueError):
        parse_pypi_project(doc, "x")


# --- the client ------------------------------------------------------------------------------------
@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    test_server = TestServer(make_app(), host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


def client(server: TestServer) -> RegistryClient:
    base = str(server.make_url("")).rstrip("/")
    return RegistryClient(npm_base=base, pypi_base=base, timeout_s=1.0, retries=0, backoff_s=0.01)


async def test_fetch_latest(server: TestServer) -> None:
    async with client(server) as registry:
        lodash = await registry.fetch_latest("npm", "lodash")
        flask = await registry.fetch_latest("pypi", "flask")
        missing = await registry.fetch_latest("npm", "no-such-package")
        missing_pypi = await registry.fetch_latest("pypi", "no-such-package")
        scoped = await registry.fetch_latest("npm", "@legacy/pkg")
    assert lodash is not None and (lodash.version, lodash.description) == (
        "4.17.21",
        "Lodash modular utilities.",
    )
    assert lodash.maintainers == ("mathias", "jdalton", "bnjmnt4n")
    assert flask is not None and (flask.name, flask.version) == ("Flask", "3.0.0")
    assert missing is None and missing_pypi is None
    # npm refused the per-version route of a scoped name: the packument's latest
    assert (
        scoped is not None and scoped.version == "2.0.0" and scoped.published_at == "2021-01-01T00:00:00.000Z"
    )
    assert server.app[HITS]["/lodash/latest"] == 1 and server.app[HITS]["/@legacy%2fpkg"] == 1


async def test_a_malformed_project_document_is_a_response_error(server: TestServer) -> None:
    """Not an AttributeError: enrichment skips an ``UpstreamError`` but dead-letters a bug."""
    async with client(server) as registry:
        with pytest.raises(UpstreamResponseError):
            await registry.fetch_latest("pypi", "badinfo")
        with pytest.raises(UpstreamResponseError):
            await registry.fetch_history("pypi", "badinfo")


async def test_fetch_history(server: TestServer) -> None:
    async with client(server) as registry:
        npm = await registry.fetch_history("npm", "acme-internal-auth")
        pypi = await registry.fetch_history("pypi", "reqeusts-toolbelt")
        missing = await registry.fetch_history("npm", "no-such-package")
        with pytest.raises(UpstreamResponseError):
            await registry.fetch_history("npm", "broken")
        with pytest.raises(UpstreamResponseError):
            await registry.fetch_history("npm", "garbage")
    assert npm is not None and [r.version for r in npm.releases] == ["99.0.0"]
    assert npm.release("99.0.0") == Release("99.0.0", "2026-11-25T10:00:02.301Z", "h4ck3r-2291")
    assert pypi is not None and pypi.created_at == "2026-11-25T10:00:05.123456Z"
    assert missing is None


async def test_a_scoped_fallback_version_carries_its_publish_time(server: TestServer) -> None:
    async with client(server) as registry:
        meta = await registry.fetch("npm", "@legacy/pkg", "1.0.0")
    assert meta is not None and meta.published_at == "2020-01-01T00:00:00.000Z"

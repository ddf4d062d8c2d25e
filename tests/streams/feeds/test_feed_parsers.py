"""Pure parsers: PyPI RSS items and npm ``_changes`` rows / packuments (hand-written real shapes)."""

from __future__ import annotations

import orjson
import pytest
from fixture_feeds import CHANGES, LAST_SEQ, PACKAGES_XML, PACKUMENTS, PYPI_EXPECTED, UPDATES_XML

from typostream.agents.adapters.feeds import parse_changes, parse_new_projects, parse_updates
from typostream.agents.adapters.feeds.npm import publishes_from_packument
from typostream.agents.domain.events import parse_publish


def test_parse_updates_takes_display_name_version_and_pubdate() -> None:
    events = parse_updates(UPDATES_XML)
    assert [(e["name"], e["version"], e["created_date"]) for e in events] == [
        ("Flask-Login", "0.7.0", "2026-11-02T14:00:09.000Z"),
        ("reqeusts", "2.31.0", "2026-11-02T14:00:08.000Z"),
        ("numpy", "2.3.0rc1", "2026-11-02T13:59:58.000Z"),
    ]  # feed order, the item without a pubDate skipped
    assert {(e["name"], e["version"], e["created_date"]) for e in events} == PYPI_EXPECTED
    for event in events:
        assert event["type"] == "pypi" and event["schema_ver"] == "1.1.0" and event["artifact_id"] == ""
        parsed = parse_publish(orjson.dumps(event), 64 * 1024)
        assert parsed.created_date == event["created_date"]


def test_parse_updates_falls_back_to_the_link_when_the_title_disagrees() -> None:
    xml = b"""<rss version="2.0"><channel><item><title>odd title</title>
      <link>https://pypi.org/project/real-name/1.0.post1/</link>
      <pubDate>Tue, 03 Nov 2026 08:00:00 +0100</pubDate></item></channel></rss>"""
    [event] = parse_updates(xml)
    assert (event["name"], event["version"], event["created_date"]) == (
        "real-name",
        "1.0.post1",
        "2026-11-03T07:00:00.000Z",
    )


def test_parse_updates_strips_control_characters_and_rejects_non_rss() -> None:
    xml = b"<rss><channel><item><title>a\x00b 1.0</title><link>https://pypi.org/project/ab/1.0/</link>"
    xml += b"<pubDate>Mon, 02 Nov 2026 14:00:09 GMT</pubDate></item></channel></rss>"
    assert [(e["name"], e["version"]) for e in parse_updates(xml)] == [("ab", "1.0")]
    with pytest.raises(ValueError, match="not RSS"):
        parse_updates(b"<html><body>proxy error</body></html>")
    with pytest.raises(ValueError, match="not RSS XML"):
        parse_updates(b"{}")


def test_parse_new_projects() -> None:
    assert [name for name, _ in parse_new_projects(PACKAGES_XML)] == ["brand-new", "reqeusts"]


def test_parse_changes_keeps_the_sequence_opaque() -> None:
    page = parse_changes(orjson.dumps(CHANGES))
    assert page.last_seq == LAST_SEQ
    assert [c.name for c in page.changes][:3] == ["left-pad", "@acme/widgets", "gone-pkg"]
    assert [c.name for c in page.changes if c.deleted] == ["gone-pkg"]
    design = {"results": [{"seq": 9, "id": "_design/app", "changes": []}], "last_seq": 9}
    assert parse_changes(orjson.dumps(design)).changes == []
    with pytest.raises(ValueError):
        parse_changes(b'{"rows": []}')
    with pytest.raises(ValueError):
        parse_changes(b"<html>")


def _published(path: str) -> list[tuple[str, str, str]]:
    events = publishes_from_packument(PACKUMENTS[path], "x")
    return [(e["name"], e["version"], e["created_date"]) for e in events]


def test_packument_versions_published_by_this_change() -> None:
    assert _published("/left-pad") == [("left-pad", "1.3.0", "2026-11-02T14:00:01.100Z")]
    assert _published("/@acme%2fwidgets") == [
        ("@acme/widgets", "1.0.0", "2026-11-02T14:00:02.000Z"),
        ("@acme/widgets", "1.0.1", "2026-11-02T14:00:03.000Z"),
    ]
    assert _published("/deprecated-only") == []  # metadata-only change
    assert _published("/unpub") == []  # time.unpublished


def test_packument_edge_cases() -> None:
    doc = {"name": "p", "time": {"1.0.0": "2026-01-01T00:00:00Z", "2.0.0": "2026-02-01T00:00:00Z"}}
    assert [e["version"] for e in publishes_from_packument(doc, "p")] == ["2.0.0"]  # no modified: newest
    removed = {**doc, "versions": {"1.0.0": {}}}
    assert [e["version"] for e in publishes_from_packument(removed, "p")] == ["1.0.0"]  # 2.0.0 deleted
    with pytest.raises(ValueError):
        publishes_from_packument({"name": "p"}, "p")

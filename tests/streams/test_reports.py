"""Output-format plug-ins of ``typostream scan`` (``typostream.streams.reports``).

The json and sarif reporters must print exactly what ``scan`` printed before formats became
plug-ins: ``_legacy_*`` below are verbatim copies of that code (``streams/cli/scan.py`` before the
move), and the literal expectations were captured by running that CLI.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.detection import Detector, ScanResult, Threat
from typostream.agents.domain.detection.techniques import TECHNIQUES
from typostream.streams.reports import REPORTERS, Reporter
from typostream.streams.reports.json import JsonReporter
from typostream.streams.reports.sarif import SarifReporter
from typostream.streams.reports.table import TableReporter

EXE = Path(sys.executable).with_name("typostream")

# --- the pre-plug-in implementation, verbatim (the oracle) ---------------------------------------
_SARIF_LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}


def _legacy_to_sarif(results: list[ScanResult], source: str | None) -> dict[str, Any]:
    rules = [
        {"id": t.id, "name": t.technique, "shortDescription": {"text": t.description},
         "defaultConfiguration": {"level": _SARIF_LEVEL[t.severity]}}
        for t in TECHNIQUES.values()
    ]  # fmt: skip
    findings: list[dict[str, Any]] = []
    for result in results:
        for threat in result.threats:
            finding: dict[str, Any] = {
                "ruleId": f"{threat.type}.{threat.technique}",
                "level": _SARIF_LEVEL[threat.severity],
                "message": {"text": f"{result.name} ({result.registry}): {threat.evidence}"},
                "properties": {
                    "name": result.name,
                    "registry": result.registry,
                    "target": threat.target,
                    "score": threat.score,
                    "severity": threat.severity,
                    "verdict": result.verdict,
                },
            }
            if source:
                finding["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": source}}}]
            findings.append(finding)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "typostream", "informationUri": "https://pypi.org/project/typostream/",
                                    "rules": rules}},
                "results": findings,
            }
        ],
    }  # fmt: skip


def _legacy_stdout(fmt: str, results: list[ScanResult], source: str | None) -> str:
    """What ``scan`` wrote to stdout: ``typer.echo`` of each JSON line, or of the SARIF document."""
    if fmt == "json":
        return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results)
    return json.dumps(_legacy_to_sarif(results, source), indent=2, ensure_ascii=False) + "\n"


# --- fixed results (independent of the detector's data) ------------------------------------------
RESULTS = [
    ScanResult(
        "lodahs",
        "npm",
        "suspicious",
        [Threat("typosquat", "lodash", "transposition", 0.78, "high", "transposition: swaps 'sh'")],
    ),
    ScanResult("react", "npm"),
    ScanResult(
        "crossenv",
        "npm",
        "malicious",
        [
            Threat(
                "malicious_package", "SEED-2", "known_malicious", 1.0, "critical", "SEED-2 (all versions)"
            ),
            Threat("typosquat", "cross-env", "separator", 0.78, "high", "separator: 'crossenv'"),
        ],
    ),
    ScanResult(
        "l\u043edash",
        "npm",
        "suspicious",
        [Threat("typosquat", "lodash", "homoglyph", 0.5, "medium", "look-alike '\u043e' (U+043E)")],
    ),
    ScanResult(
        "reqeust", "pypi", "suspicious", [Threat("typosquat", "requests", "omission", 0.3, "low", "x")]
    ),
]

EXPECTED_JSON = """\
{"name": "lodahs", "registry": "npm", "verdict": "suspicious", "threats": [{"type": "typosquat", "target": "lodash", "technique": "transposition", "score": 0.78, "severity": "high", "evidence": "transposition: swaps 'sh'"}]}
{"name": "react", "registry": "npm", "verdict": "clean", "threats": []}
{"name": "crossenv", "registry": "npm", "verdict": "malicious", "threats": [{"type": "malicious_package", "target": "SEED-2", "technique": "known_malicious", "score": 1.0, "severity": "critical", "evidence": "SEED-2 (all versions)"}, {"type": "typosquat", "target": "cross-env", "technique": "separator", "score": 0.78, "severity": "high", "evidence": "separator: 'crossenv'"}]}
{"name": "lоdash", "registry": "npm", "verdict": "suspicious", "threats": [{"type": "typosquat", "target": "lodash", "technique": "homoglyph", "score": 0.5, "severity": "medium", "evidence": "look-alike 'о' (U+043E)"}]}
{"name": "reqeust", "registry": "pypi", "verdict": "suspicious", "threats": [{"type": "typosquat", "target": "requests", "technique": "omission", "score": 0.3, "severity": "low", "evidence": "x"}]}
"""  # noqa: E501

EXPECTED_SARIF_RESULTS = """\
[
  {
    "ruleId": "typosquat.homoglyph",
    "level": "warning",
    "message": {
      "text": "lоdash (npm): look-alike 'о' (U+043E)"
    },
    "properties": {
      "name": "lоdash",
      "registry": "npm",
      "target": "lodash",
      "score": 0.5,
      "severity": "medium",
      "verdict": "suspicious"
    },
    "locations": [
      {
        "physicalLocation": {
          "artifactLocation": {
            "uri": "package.json"
          }
        }
      }
    ]
  },
  {
    "ruleId": "typosquat.omission",
    "level": "note",
    "message": {
      "text": "reqeust (pypi): x"
    },
    "properties": {
      "name": "reqeust",
      "registry": "pypi",
      "target": "requests",
      "score": 0.3,
      "severity": "low",
      "verdict": "suspicious"
    },
    "locations": [
      {
        "physicalLocation": {
          "artifactLocation": {
            "uri": "package.json"
          }
        }
      }
    ]
  }
]"""


class TestRegistry:
    def test_formats_in_order_and_ids_match(self) -> None:
        assert list(REPORTERS) == ["json", "sarif", "table"]
        for fmt, reporter in REPORTERS.items():
            assert isinstance(reporter, Reporter) and reporter.id == fmt and reporter.description
        assert isinstance(REPORTERS["json"], JsonReporter)
        assert isinstance(REPORTERS["sarif"], SarifReporter)
        assert isinstance(REPORTERS["table"], TableReporter)

    def test_registry_is_read_only(self) -> None:
        with pytest.raises(TypeError):
            REPORTERS["x"] = JsonReporter()  # type: ignore[index]

    def test_a_reporter_is_one_class(self) -> None:
        class Names(Reporter):
            id: ClassVar[str] = "names"
            description: ClassVar[str] = "Names only."

            def render(self, results: Sequence[ScanResult], source: str | None) -> str:
                return "".join(f"{r.name}\n" for r in results)

        out = io.StringIO()
        Names().write(RESULTS[:2], None, out)
        assert out.getvalue() == "lodahs\nreact\n"


class TestJson:
    def test_literal_output(self) -> None:
        assert REPORTERS["json"].render(RESULTS, None) == EXPECTED_JSON
        assert REPORTERS["json"].render(RESULTS, "requirements.txt") == EXPECTED_JSON

    def test_no_results_print_nothing(self) -> None:
        assert REPORTERS["json"].render([], None) == ""

    def test_write(self) -> None:
        out = io.StringIO()
        REPORTERS["json"].write(RESULTS, None, out)
        assert out.getvalue() == EXPECTED_JSON


class TestSarif:
    @pytest.mark.parametrize("source", [None, "", "package.json"])
    def test_identical_to_legacy(self, source: str | None) -> None:
        for results in (RESULTS, RESULTS[1:2], []):
            assert REPORTERS["sarif"].render(results, source) == _legacy_stdout("sarif", results, source)

    def test_literal_results(self) -> None:
        text = REPORTERS["sarif"].render(RESULTS[3:], "package.json")
        log = json.loads(text)
        assert json.dumps(log["runs"][0]["results"], indent=2, ensure_ascii=False) == EXPECTED_SARIF_RESULTS
        assert text.startswith('{\n  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",\n')
        assert text.endswith("\n}\n") and '"uri": "package.json"' in text
        driver = log["runs"][0]["tool"]["driver"]
        assert [r["id"] for r in driver["rules"]] == list(TECHNIQUES)

    def test_no_source_no_locations(self) -> None:
        log = json.loads(REPORTERS["sarif"].render(RESULTS, None))
        assert log["runs"][0]["results"] and all("locations" not in r for r in log["runs"][0]["results"])


class TestTable:
    def test_one_row_per_threat_or_clean_name(self) -> None:
        text = REPORTERS["table"].render(RESULTS, None)
        assert "typostream scan" in text and "\x1b[" not in text
        rows = [line for line in text.splitlines() if line.startswith("│")]
        assert len(rows) == 6
        assert "lodahs" in rows[0] and "0.78" in rows[0] and "react" in rows[1] and "clean" in rows[1]
        assert "\u2503 name" in text and "evidence" in text

    def test_write_matches_render_on_a_plain_stream(self) -> None:
        out = io.StringIO()
        REPORTERS["table"].write(RESULTS, None, out)
        assert out.getvalue() == REPORTERS["table"].render(RESULTS, None)


# --- the CLI prints exactly what it printed before -----------------------------------------------
CASES: list[tuple[str, list[str]]] = [
    ("npm", ["lodahs", "react", "crossenv", "l\u043edash", "@types/react"]),
    ("pypi", ["reqeusts", "requests", "python-dateutil"]),
]


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
@pytest.mark.parametrize("fmt", ["json", "sarif"])
@pytest.mark.parametrize(("registry", "names"), CASES)
def test_cli_output_identical_to_legacy(
    fmt: str, registry: str, names: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WATCHLIST_FILE", "ALLOWLIST_FILE", "KNOWN_MALICIOUS_PATHS"):
        monkeypatch.delenv(f"TYPOSTREAM_{name}", raising=False)
    assessor = Assessor(Detector.default(), load_known())
    results = [assessor.assess(name, registry) for name in names]
    listing = tmp_path / "names.txt"
    listing.write_text("\n".join(names) + "\n", encoding="utf-8")
    for args, source in (([*names], None), (["--file", str(listing)], str(listing))):
        proc = subprocess.run(
            [str(EXE), "scan", "--registry", registry, "--format", fmt, *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == _legacy_stdout(fmt, results, source)

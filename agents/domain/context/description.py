"""Empty or copied description: a package that says nothing about itself, or says what its target says.

Legitimate packages describe themselves, and a fork or plugin rewords its parent's description; a
typosquat is often published with none, or with the target's description (or README) copied to look
like it. Copies are judged against the target's latest metadata (when the enrichment has it) by the
similarity of the normalised texts.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Final

from typostream.agents.domain.context.base import ContextDetector, PublishContext, Signal
from typostream.agents.domain.context.tunables import (
    COPIED_DESCRIPTION_WEIGHT,
    COPIED_SIMILARITY,
    EMPTY_DESCRIPTION_WEIGHT,
    MIN_COPIED_CHARS,
)

__all__ = ["Description", "normalised_text", "similarity"]

_NON_WORD: Final = re.compile(r"[\W_]+")
_README_CHARS: Final = 2000
_MIN_README_CHARS: Final = 200


def normalised_text(text: str) -> str:
    """Lowercase words separated by single spaces (punctuation, markup and case ignored)."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def similarity(a: str, b: str) -> float:
    """0-1 similarity of two normalised texts (1: equal, or one contains the other whole)."""
    if not a or not b:
        return 0.0
    if a == b or (len(b) >= MIN_COPIED_CHARS and b in a) or (len(a) >= MIN_COPIED_CHARS and a in b):
        return 1.0
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < COPIED_SIMILARITY or matcher.quick_ratio() < COPIED_SIMILARITY:
        return matcher.quick_ratio()
    return matcher.ratio()


class Description(ContextDetector):
    id = "description"
    description = "No description at all, or the target's description (or README) copied."

    def detect(self, context: PublishContext) -> list[Signal]:
        metadata = context.metadata
        if metadata is None:
            return []
        own = normalised_text(metadata.description)
        own_readme = normalised_text(metadata.long_description[:_README_CHARS])
        target = context.target_metadata
        if target is not None:
            theirs = normalised_text(target.description)
            if len(theirs) >= MIN_COPIED_CHARS and similarity(own, theirs) >= COPIED_SIMILARITY:
                return [
                    self.signal(
                        "copied",
                        f"description copied from {target.name}: {metadata.description.strip()[:80]!r}",
                        COPIED_DESCRIPTION_WEIGHT,
                    )
                ]
            their_readme = normalised_text(target.long_description[:_README_CHARS])
            if (
                min(len(own_readme), len(their_readme)) >= _MIN_README_CHARS
                and similarity(own_readme, their_readme) >= COPIED_SIMILARITY
            ):
                return [self.signal("copied", f"README copied from {target.name}", COPIED_DESCRIPTION_WEIGHT)]
        if not own and not own_readme:
            return [self.signal("empty", "no description and no README", EMPTY_DESCRIPTION_WEIGHT)]
        return []

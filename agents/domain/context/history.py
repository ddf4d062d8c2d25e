"""First release or long history: what the registry (or typostream's packages table) knows of the
package before this publish.

Most malicious packages are the first and only release of their name; a package with years of
releases is rarely one (its takeover is ``maintainer.new_publisher``'s to notice). The registry's
history (``PackageHistory``) is preferred; without it the packages table tells whether typostream
has seen an earlier version (weaker: the table only knows what was published while it ran).
"""

from __future__ import annotations

from typostream.agents.domain.context.base import ContextDetector, PublishContext, Signal, days_between
from typostream.agents.domain.context.tunables import (
    ESTABLISHED_DAYS,
    ESTABLISHED_RELEASES,
    ESTABLISHED_WEIGHT,
    FIRST_RELEASE_WEIGHT,
    FIRST_SEEN_WEIGHT,
)

__all__ = ["History"]


class History(ContextDetector):
    id = "history"
    description = "A first release (or first sighting) raises the risk; a long release history lowers it."
    needs_metadata = False

    def detect(self, context: PublishContext) -> list[Signal]:
        standing = context.standing()
        if standing == "first_release":
            return [
                self.signal("first_release", "the registry lists no earlier release", FIRST_RELEASE_WEIGHT)
            ]
        if standing == "first_seen":
            first = context.seen.first_seen if context.seen else None
            detail = "typostream has seen no earlier version" + (f" (first seen {first})" if first else "")
            return [self.signal("first_seen", detail, FIRST_SEEN_WEIGHT)]
        if standing != "later":
            return []
        if context.history is not None and context.version is not None:
            earlier = len(context.history.before(context.version))
            first = context.history.created_at
        else:
            earlier = len(context.seen.earlier_versions) if context.seen else 0
            first = context.seen.first_seen if context.seen else None
        age = days_between(first, context.released_at())
        if earlier >= ESTABLISHED_RELEASES or (age is not None and age >= ESTABLISHED_DAYS):
            since = f", first published {first[:10]}" if first else ""
            return [self.signal("established", f"{earlier} earlier release(s){since}", ESTABLISHED_WEIGHT)]
        return []

"""New maintainer: who published this release, and since when they publish the package.

Three facts, each only when the metadata has it:

- a maintainer shared with the target: the target's own people published the near-name, not a
  squat (typomania's "same author" exclusion; a strong negative). npm only, where ``maintainers``
  are registry accounts: PyPI's maintainer and author fields are free text a squat can copy;
- a later release published by an account that published none of the earlier ones (npm
  ``_npmUser`` per version, from the packument): the shape of a takeover or a hand-over;
- a later release of a package first published days before: a maintainer without a track record.

Neither registry publishes account creation dates, so the package's first publish stands for the
maintainer's age here.
"""

from __future__ import annotations

from typostream.agents.domain.context.base import ContextDetector, PublishContext, Signal, days_between
from typostream.agents.domain.context.tunables import (
    NEW_PUBLISHER_WEIGHT,
    SHARED_MAINTAINER_WEIGHT,
    YOUNG_PACKAGE_DAYS,
    YOUNG_PACKAGE_WEIGHT,
)

__all__ = ["NewMaintainer"]


def _people(names: tuple[str, ...] | list[str]) -> set[str]:
    return {n.strip().lower() for n in names if n and n.strip()}


class NewMaintainer(ContextDetector):
    id = "maintainer"
    description = (
        "A publisher new to the package, or a package days old; a maintainer shared with the target "
        "lowers the risk."
    )

    def detect(self, context: PublishContext) -> list[Signal]:
        metadata, history, target = context.metadata, context.history, context.target_metadata
        if metadata is None:
            return []
        mine = _people(list(metadata.maintainers))
        if history is not None and context.version is not None:
            release = history.release(context.version)
            if release is not None and release.publisher:
                mine.add(release.publisher.strip().lower())
        if target is not None and metadata.registry == "npm" and target.registry == "npm":
            shared = sorted(mine & _people(list(target.maintainers)))
            if shared:
                return [
                    self.signal(
                        "shared_with_target",
                        f"{', '.join(shared)} also maintain(s) {target.name}",
                        SHARED_MAINTAINER_WEIGHT,
                    )
                ]
        if history is None or context.version is None:
            return []
        earlier = history.before(context.version)
        if not earlier:
            return []  # a first release: history.first_release says it
        signals: list[Signal] = []
        release = history.release(context.version)
        publishers = _people([r.publisher for r in earlier if r.publisher])
        publisher = release.publisher if release is not None else None
        if publisher and publishers and publisher.strip().lower() not in publishers:
            detail = f"published by {publisher}, who published none of the {len(earlier)} earlier release(s)"
            signals.append(self.signal("new_publisher", detail, NEW_PUBLISHER_WEIGHT))
        age = days_between(history.created_at, context.released_at())
        if age is not None and 0 <= age < YOUNG_PACKAGE_DAYS:
            signals.append(
                self.signal(
                    "young_package",
                    f"the package was first published {age:.0f} day(s) before this release",
                    YOUNG_PACKAGE_WEIGHT,
                )
            )
        return signals

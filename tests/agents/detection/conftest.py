from __future__ import annotations

import pytest

from typostream.agents.domain.detection import Detector
from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.names import NameForms


@pytest.fixture(scope="session")
def detector() -> Detector:
    return Detector.default()


@pytest.fixture
def target_factory():
    def make(name: str, registry: str = "npm", rank: int = 1, watched: bool = False) -> Target:
        return Target(NameForms.of(name, registry), rank=rank, popularity=0, watched=watched)

    return make

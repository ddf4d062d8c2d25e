"""Request bodies for ``POST /api/v1/scan``, a fixed (seeded) mix of the API's three body shapes.

Shared by the Locust users (``scan.py``) and the open-loop generator (``open_loop.py``), so both
send the same traffic:

* 40 % the seed's load-test body ``{package_name, version}`` as the form k6 sends for a plain object
  (``package_name=...&version=...``, registry left to the API's default, npm);
* 15 % the same body as JSON;
* 35 % ``{"registry", "names": [...]}`` as JSON, 1-5 names (npm 70 %, PyPI 30 %), some
  ``NAME@VERSION`` / ``NAME==VERSION``;
* 10 % ``registry=pypi&names=a,b`` as a form.

Names: sampled (seeded) from the bundled real-name lists ``data/names/{npm,pypi}.tsv.gz`` (mostly
not popular, like real traffic), with 10 % one-edit typos of popular names (a threat to report)
and, given the ``queries.json`` of ``benchmarks/advisories.py``'s tree, 5 % packages that have
advisories in the server's on-disk index (with a version).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from urllib.parse import urlencode

from typostream.agents.domain.detection.popular import top_names
from typostream.agents.domain.manifests import parse_spec
from typostream.data.names import iter_names, names_file

__all__ = ["FORM", "JSON", "BodyMix"]

SEED = 20261213
POOL = 20_000
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
REGISTRIES = ("npm", "pypi")


def typo(rng: random.Random, name: str) -> str:
    """One edit of ``name``: a swap of neighbours, a dropped or a doubled letter."""
    if len(name) < 4:
        return name + name[-1]
    i = rng.randrange(1, len(name) - 1)
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap":
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if edit == "drop":
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i] + name[i:]


def _valid(name: str, registry: str) -> bool:
    """A name the API accepts (the lists hold a few names no registry would take today)."""
    try:
        parse_spec(name, registry)
    except ValueError:
        return False
    return "," not in name  # a form separates names with commas


class BodyMix:
    """Bodies drawn from the mix above; :meth:`next` gives ``(body, content type)``."""

    def __init__(self, seed: int = SEED, queries: Path | str | None = None) -> None:
        pools = random.Random(SEED)  # the same name pools for every user and process
        self.sample: dict[str, list[str]] = {}
        self.popular: dict[str, list[str]] = {}
        for registry in REGISTRIES:
            names = [n for n in iter_names(names_file(registry)) if _valid(n, registry)]
            self.sample[registry] = pools.sample(names, min(POOL, len(names)))
            self.popular[registry] = top_names(registry, 2000)
        self.known: dict[str, list[tuple[str, str]]] = {registry: [] for registry in REGISTRIES}
        if queries is not None and Path(queries).exists():
            for registry, name, version, known in json.loads(Path(queries).read_text()):
                if known and version and registry in self.known and _valid(name, registry):
                    self.known[registry].append((name, version))
        self.rng = random.Random(seed)

    def package(self, registry: str) -> tuple[str, str | None]:
        """A (name, version or None) of ``registry``."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.05 and self.known[registry]:
            return rng.choice(self.known[registry])
        if roll < 0.15:
            name = typo(rng, rng.choice(self.popular[registry]))
            return (name if _valid(name, registry) else rng.choice(self.sample[registry])), None
        version = (
            f"{rng.randrange(5)}.{rng.randrange(20)}.{rng.randrange(10)}" if rng.random() < 0.3 else None
        )
        return rng.choice(self.sample[registry]), version

    def spec(self, registry: str) -> str:
        name, version = self.package(registry)
        return name if version is None else name + ("@" if registry == "npm" else "==") + version

    def next(self) -> tuple[bytes, str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:  # the seed's body: 40 % as a form, 15 % as JSON
            name, version = self.package("npm")
            fields = {"package_name": name, "version": version or "1.0.0"}
            if roll < 0.40:
                return urlencode(fields).encode(), FORM
            return json.dumps(fields).encode(), JSON
        if roll < 0.90:
            registry = "npm" if rng.random() < 0.7 else "pypi"
            names = [self.spec(registry) for _ in range(rng.randint(1, 5))]
            return json.dumps({"registry": registry, "names": names}).encode(), JSON
        names_field = ",".join(self.spec("pypi") for _ in range(rng.randint(1, 3)))
        return urlencode({"registry": "pypi", "names": names_field}).encode(), FORM

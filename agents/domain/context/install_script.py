"""Install script on a first release: code that runs when the package is installed.

npm runs ``preinstall``/``install``/``postinstall`` of a registry tarball (``prepare`` only for
git dependencies); a PyPI release shipping only an sdist runs its ``setup.py``. Malicious packages
act at install time far more often than legitimate new packages need to, but established packages
with native builds do it every release: the weight depends on what is known of the release (none
for a later release) and is halved for hooks that only build a native module.
"""

from __future__ import annotations

import re

from typostream.agents.domain.context.base import ContextDetector, PublishContext, Signal
from typostream.agents.domain.context.tunables import (
    INSTALL_HOOKS,
    INSTALL_SCRIPT_WEIGHTS,
    NATIVE_BUILD_COMMANDS,
    NATIVE_BUILD_FACTOR,
    SDIST_ONLY_WEIGHTS,
)

__all__ = ["InstallScript", "native_build"]

_SNIPPET = 80
_WHEN = {
    "first_release": "on a first release",
    "first_seen": "on the first version typostream sees",
    "unknown": "(release history unknown)",
}


_CHAIN = re.compile(r"\|\||&&|[;|]")
_SUBSTITUTION = re.compile(r"[`$<>]")


def native_build(command: str) -> bool:
    """Whether an install hook only builds or fetches a native module (``node-gyp rebuild``,
    ``prebuild-install || node-gyp rebuild``): every command it chains is a build command, and it
    substitutes or redirects nothing."""
    if _SUBSTITUTION.search(command):
        return False
    parts = [" ".join(p.split()) for p in _CHAIN.split(command)]
    return all(any(p == c or p.startswith(c + " ") for c in NATIVE_BUILD_COMMANDS) for p in parts)


class InstallScript(ContextDetector):
    id = "install_script"
    description = "An install-time hook (npm pre/post/install, a PyPI sdist-only release) on a first release."

    def detect(self, context: PublishContext) -> list[Signal]:
        metadata = context.metadata
        if metadata is None:
            return []
        standing = context.standing()
        hooks = {k: v for k, v in metadata.install_scripts.items() if k in INSTALL_HOOKS}
        if hooks:
            weight = INSTALL_SCRIPT_WEIGHTS.get(standing)
            if weight is None:
                return []
            native = all(native_build(c) for c in hooks.values())
            shown = "; ".join(f"{k}: {' '.join(v.split())[:_SNIPPET]}" for k, v in hooks.items())
            detail = f"install hook {_WHEN[standing]}"
            if native:
                return [
                    self.signal(
                        "native_build", f"{detail}, native build only: {shown}", weight * NATIVE_BUILD_FACTOR
                    )
                ]
            return [self.signal("hook", f"{detail}: {shown}", weight)]
        if metadata.registry == "pypi" and metadata.package_types == ("sdist",):
            weight = SDIST_ONLY_WEIGHTS.get(standing)
            if weight is not None:
                detail = f"only an sdist {_WHEN[standing]}: its setup.py runs at install"
                return [self.signal("sdist_only", detail, weight)]
        return []

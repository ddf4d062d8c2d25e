"""What an install command would install, read from the installer's own resolution (pure, no I/O).

``typostream guard -- pip install ARGS`` / ``-- npm install ARGS`` asks the installer to resolve
without installing, and this module reads the answer:

- **pip**: ``pip install ARGS --dry-run --report FILE --quiet`` writes an *installation report*
  (pip's documented JSON format, "Installation Report", version ``"1"`` since pip 23.0:
  https://pip.pypa.io/en/stable/reference/installation-report/). ``install`` is an array of
  items, each with ``metadata`` (the distribution's core metadata as JSON: ``name``,
  ``version``), ``download_info`` (``url`` of the artifact), ``is_direct`` (a URL/path
  requirement, not an index release) and ``requested``. The format says tools must check
  ``version``; any other value is refused. pip reports only what it would install: already
  satisfied requirements are not in it.
- **npm**: ``npm install ARGS --package-lock-only --ignore-scripts`` in a temporary copy of the
  project writes the ``package-lock.json`` (``lockfileVersion`` 2 or 3, ``packages`` keyed by
  install path) of the tree the install would produce, fetching packuments only (no tarball, no
  script). Chosen over ``npm install --dry-run --json`` because npm 11's dry-run JSON names an
  aliased package (``x@npm:real@1``) by its alias, not the package installed, and prints
  ``add NAME VERSION`` lines on stdout ahead of the JSON.

It also knows which commands it can guard (:func:`parse_install_command`), how to turn one into
the resolving command, which requirements a pip command names itself (checked before pip runs,
because resolving a source distribution runs its build backend), and the release-time fields of
the registries' metadata (PyPI JSON ``urls[].upload_time_iso_8601``, npm packument
``time[version]``) for the minimum-release-age check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, Final, Literal

from typostream.agents.domain.errors import ResolutionError

__all__ = [
    "NPM_DEPENDENCY_SECTIONS",
    "NPM_INSTALL_ALIASES",
    "InstallCommand",
    "NpmPlan",
    "PipRequested",
    "Resolved",
    "age_days",
    "installer_error_line",
    "npm_local_path",
    "npm_manifest_local_paths",
    "npm_plan",
    "npm_publish_time",
    "npm_resolution_argv",
    "parse_install_command",
    "parse_npm_lock",
    "parse_pip_report",
    "pip_requested",
    "pip_resolution_argv",
    "pypi_upload_time",
]

Tool = Literal["pip", "npm"]

PIP_REPORT_VERSION: Final = "1"
NPM_INSTALL_ALIASES: Final = frozenset(
    {"install", "i", "add", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "isntall"}
)
"""``npm install`` and the aliases npm accepts for it."""

_PIP_EXE = re.compile(r"^pip(\d+(\.\d+)*)?(\.exe)?$", re.IGNORECASE)
_PYTHON_EXE = re.compile(r"^(python|py)(\d+(\.\d+)*)?[tw]?(\.exe)?$", re.IGNORECASE)
_NPM_EXE = re.compile(r"^npm(\.cmd|\.exe)?$", re.IGNORECASE)

# pip options (general and `install`, pip 23-25) that take a value as the next argument; optparse
# also accepts any unambiguous prefix of a long option, so the flags are listed to tell them apart.
_PIP_VALUE_LONG: Final = frozenset(
    {"--requirement", "--constraint", "--editable", "--target", "--platform", "--python-version",
     "--implementation", "--abi", "--root", "--prefix", "--src", "--source", "--source-dir",
     "--source-directory", "--upgrade-strategy", "--config-settings", "--global-option",
     "--install-option", "--build-option", "--no-binary", "--only-binary", "--progress-bar",
     "--root-user-action", "--report", "--group", "--index-url", "--extra-index-url", "--find-links",
     "--python", "--log", "--log-file", "--local-log", "--proxy", "--retries", "--resume-retries",
     "--timeout", "--exists-action", "--trusted-host", "--cert", "--client-cert", "--cache-dir",
     "--keyring-provider", "--use-feature", "--use-deprecated", "--build", "--build-dir"}
)  # fmt: skip
_PIP_FLAG_LONG: Final = frozenset(
    {"--user", "--upgrade", "--force-reinstall", "--ignore-installed", "--ignore-requires-python",
     "--no-deps", "--pre", "--dry-run", "--no-build-isolation", "--use-pep517", "--no-use-pep517",
     "--check-build-dependencies", "--break-system-packages", "--compile", "--no-compile",
     "--no-warn-script-location", "--no-warn-conflicts", "--prefer-binary", "--require-hashes",
     "--no-clean", "--no-index", "--help", "--debug", "--isolated", "--require-virtualenv",
     "--verbose", "--version", "--quiet", "--no-input", "--no-cache-dir", "--disable-pip-version-check",
     "--no-color", "--no-python-version-warning", "--egg", "--no-egg"}
)  # fmt: skip
_PIP_VALUE_SHORT: Final = frozenset("rcetiCf")
_ARCHIVE_SUFFIXES: Final = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")

# npm options the guard handles itself when resolving: where the project is, global installs,
# and the options that stop npm from writing the lockfile it reads.
_NPM_PREFIX_OPTIONS: Final = frozenset({"--prefix", "-C"})
_NPM_GLOBAL_FLAGS: Final = frozenset({"-g", "--global", "--global=true", "--location=global"})
_NPM_NO_LOCK: Final = frozenset(
    {"--dry-run", "--dry-run=true", "--no-save", "--save=false", "--no-package-lock",
     "--package-lock=false", "--lockfile-version"}
)  # fmt: skip
_NPM_WORKSPACE: Final = re.compile(r"^(-w|--workspace|--workspaces|--ws|--include-workspace-root)(=.*)?$")
_NPM_PATH_PREFIXES: Final = ("./", "../", "/", "~/")
NPM_DEPENDENCY_SECTIONS: Final = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
)
_NPM_LOCAL_PREFIXES: Final = ("git+", "git:", "git@", "file:", "link:", "github:", "gitlab:", "bitbucket:")


@dataclass(frozen=True, slots=True)
class InstallCommand:
    """An install command the guard knows: ``argv`` as given, ``sub`` the index of the ``install``
    argument (``argv[: sub + 1]`` runs the installer, ``argv[sub + 1 :]`` are its arguments)."""

    tool: Tool
    argv: tuple[str, ...]
    sub: int

    @property
    def args(self) -> tuple[str, ...]:
        return self.argv[self.sub + 1 :]

    def display(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True, slots=True)
class Resolved:
    """One package an install would put in place. ``artifact`` is the file or tarball URL the
    installer chose; ``release`` is False for packages that are no release of their own on the
    registry (a pip URL/path requirement, an npm bundled dependency): they have no publish time."""

    registry: str
    name: str
    version: str
    artifact: str | None = None
    release: bool = True


@dataclass(frozen=True, slots=True)
class PipRequested:
    """What a pip command names itself: requirement arguments and ``-r`` files (paths as given)."""

    specs: tuple[str, ...]
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NpmPlan:
    """How to resolve an npm command: the project directory to copy (see :func:`npm_plan`), the
    arguments for the resolving run (before ``--prefix``), and which of them (indices into
    ``argv``) name a local folder or tarball (``./pkg``, ``file:../x.tgz``), to be pointed at the copy."""

    project: str | None
    argv: tuple[str, ...]
    paths: tuple[int, ...] = ()


# --- the command -------------------------------------------------------------------------------
def parse_install_command(argv: Sequence[str]) -> InstallCommand:
    """``pip install ...``, ``pipX.Y install ...``, ``python -m pip install ...`` or ``npm install ...``
    (``i``, ``add`` and npm's other aliases); :class:`ResolutionError` for anything else."""
    argv = tuple(argv)
    if not argv:
        raise ResolutionError("give the install command after --, e.g. typostream guard -- pip install NAME")
    exe = PurePath(argv[0]).name
    if _PIP_EXE.match(exe):
        return _with_sub("pip", argv, 1, "pip")
    if _PYTHON_EXE.match(exe) and argv[1:3] == ("-m", "pip"):
        return _with_sub("pip", argv, 3, "python -m pip")
    if _NPM_EXE.match(exe):
        return _with_sub("npm", argv, 1, "npm")
    raise ResolutionError(
        f"cannot guard {' '.join(argv[:3])!r}: typostream guard runs 'pip install ...', "
        "'python -m pip install ...' or 'npm install ...'"
    )


def _with_sub(tool: Tool, argv: tuple[str, ...], start: int, what: str) -> InstallCommand:
    index = start
    while index < len(argv) and argv[index].startswith("-"):
        # a general option with its value in the next argument (`pip --cache-dir D install`)
        index += 2 if tool == "pip" and _pip_option(argv[index])[1] else 1
    sub = argv[index] if index < len(argv) else ""
    allowed = NPM_INSTALL_ALIASES if tool == "npm" else frozenset({"install"})
    if sub not in allowed:
        found = repr(sub) if sub else "nothing"
        hint = " (put npm options after 'install')" if tool == "npm" and sub else ""
        raise ResolutionError(f"typostream guard runs '{what} install ...', found {found} after it{hint}")
    return InstallCommand(tool, argv, index)


def _pip_long(option: str) -> str:
    """The long option ``option`` names: itself, or the one it is an unambiguous prefix of."""
    if option in _PIP_VALUE_LONG or option in _PIP_FLAG_LONG:
        return option
    candidates = [o for o in (*_PIP_VALUE_LONG, *_PIP_FLAG_LONG) if o.startswith(option)]
    return candidates[0] if len(candidates) == 1 else option


def _pip_option(token: str) -> tuple[str, bool, str | None]:
    """``(option, takes the next argument, value given in the token)`` of one pip option token:
    ``--index-url=U`` / ``--ind U`` (a prefix), ``-qU`` (flags), ``-r FILE``, ``-rFILE``, ``-Ur FILE``.
    Short options are named by their letter (``-r``)."""
    if token.startswith("--"):
        option, eq, value = token.partition("=")
        long = _pip_long(option)
        if eq:
            return long, False, value
        return long, long in _PIP_VALUE_LONG, None
    letters = token[1:]
    for i, letter in enumerate(letters):
        if letter in _PIP_VALUE_SHORT:
            rest = letters[i + 1 :]
            return f"-{letter}", not rest, rest or None
    return token, False, None


# --- pip -----------------------------------------------------------------------------------------
def _before_separator(argv: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``argv`` with ``extra`` options appended, before a ``--`` (after which they would be arguments)."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return [*argv[:cut], *extra, *argv[cut:]]
    return [*argv, *extra]


def pip_resolution_argv(command: InstallCommand, report: str) -> list[str]:
    """The command that resolves without installing: the user's, plus ``--dry-run --report FILE
    --quiet`` last (so a ``--report`` of theirs does not take the report away)."""
    return _before_separator(command.argv, ["--dry-run", "--report", report, "--quiet"])


def pip_requested(command: InstallCommand) -> PipRequested:
    """Requirement arguments (``name``, ``name==1.0``, ``name[extra]>=2``) and ``-r`` files of a pip
    command. Paths, URLs and archives are left out (pip's report names what they contain)."""
    specs: list[str] = []
    files: list[str] = []
    args = command.args
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            specs.extend(t for t in args[index:] if _looks_like_requirement(t))
            break
        if not token.startswith("-") or token == "-":
            if _looks_like_requirement(token):
                specs.append(token)
            continue
        option, takes_next, value = _pip_option(token)
        if takes_next:
            value = args[index] if index < len(args) else None
            index += 1
        if option in ("-r", "--requirement") and value:
            files.append(value)
    return PipRequested(tuple(specs), tuple(files))


def _looks_like_requirement(token: str) -> bool:
    """A name-based requirement, not a path, URL or archive (what pip tells apart: a path
    separator, a leading dot, ``://``, an archive suffix)."""
    lowered = token.lower()
    return not (
        not token
        or "/" in token
        or "\\" in token
        or token.startswith(".")
        or "://" in token
        or lowered.endswith(_ARCHIVE_SUFFIXES)
    )


def parse_pip_report(doc: Any) -> list[Resolved]:
    """The packages of a pip installation report (format version 1); :class:`ResolutionError` when
    it is not one."""
    if not isinstance(doc, dict):
        raise ResolutionError("pip's installation report is not a JSON object")
    version = doc.get("version")
    if version != PIP_REPORT_VERSION:
        raise ResolutionError(
            f"pip's installation report has version {version!r}; typostream reads version "
            f"{PIP_REPORT_VERSION!r} (pip 23.0 or later)"
        )
    install = doc.get("install")
    if not isinstance(install, list):
        raise ResolutionError("pip's installation report has no 'install' array")
    out: list[Resolved] = []
    for position, item in enumerate(install):
        metadata = item.get("metadata") if isinstance(item, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        release = metadata.get("version") if isinstance(metadata, dict) else None
        if not (isinstance(name, str) and name.strip() and isinstance(release, str) and release.strip()):
            raise ResolutionError(
                f"pip's installation report: install[{position}] has no metadata name/version"
            )
        download = item.get("download_info")
        url = download.get("url") if isinstance(download, dict) else None
        direct = item.get("is_direct") is True
        out.append(
            Resolved(
                "pypi",
                name.strip(),
                release.strip(),
                artifact=url if isinstance(url, str) else None,
                release=not direct,
            )
        )
    return out


# --- npm -----------------------------------------------------------------------------------------
def npm_plan(command: InstallCommand) -> NpmPlan:
    """Where the project is (``--prefix``/``-C``; None: the caller looks it up as npm does; the empty
    string: a global install, resolved as a new empty project) and the arguments of the resolving
    run: the user's, without the options the guard sets itself or that stop npm from writing the
    lockfile. Workspaces are refused (their folders would have to be copied too)."""
    kept: list[str] = []
    paths: list[int] = []
    project: str | None = None
    is_global = False
    argv = command.argv
    index = 1
    while index < len(argv):
        token = argv[index]
        index += 1
        if token == "--":
            kept.extend(argv[index - 1 :])
            break
        option, eq, value = token.partition("=")
        following = argv[index] if index < len(argv) else None
        if _NPM_WORKSPACE.match(token):
            raise ResolutionError(
                "typostream guard does not resolve npm workspaces yet; run it in one package"
            )
        if token in _NPM_GLOBAL_FLAGS:
            is_global = True
        elif option == "--location" and not eq:
            is_global = is_global or following == "global"
            index += 1
        elif option in _NPM_PREFIX_OPTIONS:
            if not eq:
                if following is None:
                    raise ResolutionError(f"npm option {token} needs a directory")
                value = following
                index += 1
            project = value
        elif token in _NPM_NO_LOCK:
            index += 1 if token == "--lockfile-version" else 0
        elif option != "--lockfile-version":
            if not token.startswith("-") and index - 1 > command.sub and npm_local_path(token) is not None:
                paths.append(len(kept) + 1)
            kept.append(token)
    return NpmPlan("" if is_global else project, (argv[0], *kept), tuple(paths))


def npm_local_path(spec: str) -> str | None:
    """The path of an npm spec naming a local folder or tarball (``file:x``, ``./x``, ``../x``,
    ``/x``, ``~/x``, as npm-package-arg reads them), else None (a registry, git or URL spec)."""
    if spec.startswith("file:"):
        path = spec[5:]
        return path[2:] if path.startswith("///") else path or "."
    if spec in (".", "..") or spec.startswith(_NPM_PATH_PREFIXES):
        return spec
    return None


def npm_manifest_local_paths(doc: Any) -> list[str]:
    """The local folder/tarball paths a ``package.json`` depends on (``"x": "file:../x"``)."""
    if not isinstance(doc, dict):
        return []
    found = []
    for section in NPM_DEPENDENCY_SECTIONS:
        dependencies = doc.get(section)
        if isinstance(dependencies, dict):
            for spec in dependencies.values():
                path = npm_local_path(spec) if isinstance(spec, str) else None
                if path is not None:
                    found.append(path)
    return found


def npm_resolution_argv(plan: NpmPlan, prefix: str) -> list[str]:
    """The resolving run: lockfile only, no lifecycle script, no audit, in ``prefix``."""
    extra = ["--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", prefix]
    return _before_separator(plan.argv, extra)


def parse_npm_lock(doc: Any) -> tuple[list[Resolved], list[str]]:
    """The registry packages of a ``package-lock.json`` written by ``--package-lock-only``, and the
    install paths of those that do not come from a registry (git, local folders, links).

    Names: the entry's ``name`` (an alias ``x@npm:real@1`` installs ``real`` at ``node_modules/x``),
    else the part after the last ``node_modules/``. Each name@version is listed once."""
    if not isinstance(doc, dict):
        raise ResolutionError("npm's package-lock.json is not a JSON object")
    lock_version = doc.get("lockfileVersion")
    packages = doc.get("packages")
    if lock_version not in (2, 3) or not isinstance(packages, dict):
        raise ResolutionError(
            f"npm wrote a lockfile (lockfileVersion {lock_version!r}) without a 'packages' object; "
            "typostream guard needs npm 7 or later"
        )
    out: list[Resolved] = []
    local: list[str] = []
    seen: set[tuple[str, str]] = set()
    for key, info in packages.items():
        if not isinstance(info, dict):
            raise ResolutionError(f"npm's package-lock.json: packages[{key!r}] is not an object")
        if not key.startswith("node_modules/") and "/node_modules/" not in key:
            # the root project (""), or a local package: npm writes {} for one it could not read,
            # and would install the dependencies of one inside the project it can
            if key and not info and not key.startswith(("../", "/")):
                raise ResolutionError(
                    f"npm could not read the local package {key!r} the project depends on, "
                    "so its dependencies cannot be checked"
                )
            continue
        if info.get("link") or any(
            isinstance(info.get(field), str) and str(info[field]).startswith(_NPM_LOCAL_PREFIXES)
            for field in ("resolved", "version")
        ):
            local.append(key)
            continue
        name = info.get("name") or key.rsplit("node_modules/", 1)[-1]
        version = info.get("version")
        if not (isinstance(name, str) and name and isinstance(version, str) and version):
            raise ResolutionError(f"npm's package-lock.json: packages[{key!r}] has no name/version")
        if (name, version) in seen:
            continue
        seen.add((name, version))
        resolved = info.get("resolved")
        out.append(
            Resolved(
                "npm",
                name,
                version,
                artifact=resolved if isinstance(resolved, str) else None,
                release=not info.get("inBundle"),
            )
        )
    return out, local


# --- release times -------------------------------------------------------------------------------
def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pypi_upload_time(doc: Any, filename: str | None = None) -> datetime | None:
    """When a PyPI release's file was uploaded, from ``/pypi/<name>/<version>/json``: the file
    ``filename`` (the one pip chose), else the newest of the release's files (a file added to an
    old release is as new as its upload). None when the document gives no time;
    ``ValueError`` when it is not such a document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("urls"), list):
        raise ValueError("PyPI JSON document has no 'urls' array")
    times: dict[str, datetime] = {}
    undated: list[datetime] = []
    for entry in doc["urls"]:
        if not isinstance(entry, dict):
            continue
        when = _timestamp(entry.get("upload_time_iso_8601")) or _timestamp(entry.get("upload_time"))
        if when is None:
            continue
        file = entry.get("filename")
        if isinstance(file, str):
            times[file] = when
        else:
            undated.append(when)
    if filename and filename in times:
        return times[filename]
    every = [*times.values(), *undated]
    return max(every) if every else None


def npm_publish_time(doc: Any, version: str) -> datetime | None:
    """When ``version`` was published, from a full packument's ``time`` object (None when absent;
    ``ValueError`` when the document is no packument)."""
    if not isinstance(doc, dict):
        raise ValueError("npm packument is not an object")
    times = doc.get("time")
    if times is None:
        return None
    if not isinstance(times, dict):
        raise ValueError("npm packument 'time' is not an object")
    return _timestamp(times.get(version))


def age_days(published: datetime, now: datetime) -> float:
    """Days between ``published`` and ``now`` (negative for a time in the future)."""
    return (now - published).total_seconds() / 86400


# --- installer output ----------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def installer_error_line(tool: Tool, stderr: str) -> str:
    """The line of an installer's error output that says what went wrong (pip: the last ``ERROR:``
    line; npm: the first ``npm error`` line that is not just its code), else its last line."""
    lines = [_ANSI.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    if tool == "pip":
        errors = [line for line in lines if line.startswith("ERROR:")]
        if errors:
            return errors[-1]
    else:
        for line in lines:
            if line.startswith(("npm error", "npm ERR!")):
                text = line.removeprefix("npm error").removeprefix("npm ERR!").strip()
                if text and not text.startswith("code ") and text not in ("404",):
                    return text
    return lines[-1] if lines else "no error output"

#!/usr/bin/env python3
"""Download the OpenSSF malicious-packages advisories and swap them in atomically.

The one place the production stack's advisory command lives: the image installs this file as
``typostream-advisories-sync``; compose runs it as the one-shot ``advisories`` service (before the
worker) and in the ``advisories-refresh`` loop, Kubernetes in the worker's init container and the
``typostream-advisories-refresh`` CronJob. When ``typostream advisories sync SOURCE`` exists, it
replaces step 3 below (``typostream advisories sync <the downloaded zip>``): nothing else changes.

One sync (``--every`` repeats it, logging and retrying on failure):

1. ``--max-age``: if the current tree was fetched or confirmed less than that long ago, stop.
2. GET ``--url`` (an OSV zip: GitHub's archive of ossf/malicious-packages by default), conditional on
   the ETag / Last-Modified of the last download; 304 → unchanged, stop.
3. Extract the ``osv/malicious/**/*.json`` entries (refusing absolute paths, ``..``, links, and
   archives over ``--max-bytes`` uncompressed) into ``releases/<id>/osv/malicious``.
4. Point the ``current`` symlink at it (``os.replace``: readers see the old tree or the new one,
   never half of one), record ``state.json``, keep ``--keep`` releases.

The worker reads ``TYPOSTREAM_KNOWN_MALICIOUS_PATHS=<dir>/current/osv/malicious`` when it starts.
Standard library only, so it runs in the slim image. Exit status: 0 synced or unchanged, 1 failed
(0 with ``--allow-stale`` when an earlier tree exists: a start must not wait for the download).
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

DEFAULT_URL = "https://github.com/ossf/malicious-packages/archive/refs/heads/main.zip"
DEFAULT_DIR = "/var/lib/typostream-advisories"
SUBDIR = PurePosixPath("osv/malicious")
USER_AGENT = "typostream-advisories-sync/1 (+https://github.com/ossf/malicious-packages)"
CHUNK = 1 << 20


class SyncError(Exception):
    """A sync that cannot complete; the current tree is left as it was."""


@dataclass(frozen=True)
class Result:
    outcome: str  # "synced" | "unchanged" | "fresh"
    release: str
    files: int
    seconds: float


def log(message: str) -> None:
    print(f"advisories-sync {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}", flush=True)


def shown(url: str) -> str:
    """The URL without credentials or query (a mirror URL may carry a token)."""
    return re.sub(r"//[^/@]*@", "//", url.split("?", 1)[0])


def read_state(root: Path) -> dict[str, Any]:
    try:
        state = json.loads((root / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(root: Path, state: dict[str, Any]) -> None:
    tmp = root / f".state.{os.getpid()}.json"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, root / "state.json")


def current_release(root: Path) -> Path | None:
    current = root / "current"
    return current.resolve() if current.is_symlink() and current.resolve().is_dir() else None


def download(url: str, state: dict[str, Any], into: Path, max_bytes: int, timeout: float) -> bool:
    """Fetch ``url`` into ``into``; False when the server answers 304 to the conditional request."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if state.get("url") == url:
        if state.get("etag"):
            request.add_header("If-None-Match", state["etag"])
        if state.get("last_modified"):
            request.add_header("If-Modified-Since", state["last_modified"])
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, into.open("wb") as out:
            size = 0
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise SyncError(f"{shown(url)}: download larger than --max-bytes {max_bytes}")
                out.write(chunk)
            state["etag"] = response.headers.get("ETag") or ""
            state["last_modified"] = response.headers.get("Last-Modified") or ""
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return False
        raise SyncError(f"{shown(url)}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SyncError(f"{shown(url)}: {reason}") from None
    return True


def advisory_entries(archive: zipfile.ZipFile, max_bytes: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The archive's ``[<top>/]osv/malicious/**/*.json`` files, each with its path below ``osv/malicious``."""
    out: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        path = PurePosixPath(info.filename)
        parts = path.parts
        # GitHub archives put everything under one top folder (malicious-packages-main/).
        for skip in (0, 1):
            if parts[skip : skip + 2] == SUBDIR.parts:
                rel = PurePosixPath(*parts[skip + 2 :])
                break
        else:
            continue
        if path.is_absolute() or ".." in parts or "\\" in info.filename or not rel.parts:
            raise SyncError(f"unsafe path in archive: {info.filename!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SyncError(f"link in archive: {info.filename!r}")
        if rel.suffix != ".json":
            continue
        total += info.file_size
        if total > max_bytes:
            raise SyncError(f"archive's advisories exceed --max-bytes {max_bytes} uncompressed")
        out.append((info, rel))
    return out


def extract(zip_path: Path, target: Path, max_bytes: int) -> int:
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = advisory_entries(archive, max_bytes)
            if not entries:
                raise SyncError(f"no {SUBDIR}/**/*.json in the archive")
            base = target / SUBDIR
            for info, rel in entries:
                dest = base.joinpath(*rel.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
            return len(entries)
    except zipfile.BadZipFile as exc:
        raise SyncError(f"not a zip archive: {exc}") from None


def prune(root: Path, keep: int) -> None:
    """Keep the ``keep`` newest releases (always the current one) and no stale partial ones."""
    releases = root / "releases"
    current = current_release(root)
    finished = sorted((p for p in releases.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    for old in finished[: max(0, len(finished) - keep)]:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
    for partial in releases.glob(".partial-*"):  # a sync that died part-way (another one may be live)
        if time.time() - partial.stat().st_mtime > 3600:
            shutil.rmtree(partial, ignore_errors=True)


def sync(
    root: Path, url: str, *, max_age: float = 0, keep: int = 2, max_bytes: int, timeout: float
) -> Result:
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    (root / "releases").mkdir(exist_ok=True)
    state = read_state(root)
    current = current_release(root)
    if current is None:
        state.pop("etag", None)  # nothing to be unchanged from: download whatever the server has
        state.pop("last_modified", None)
    elif max_age and time.time() - float(state.get("checked_at", 0)) < max_age:
        return Result("fresh", current.name, int(state.get("files", 0)), time.monotonic() - started)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        zip_path = Path(tmp) / "advisories.zip"
        if not download(url, state, zip_path, max_bytes, timeout):
            assert current is not None
            state["checked_at"] = time.time()
            write_state(root, state)
            return Result("unchanged", current.name, int(state.get("files", 0)), time.monotonic() - started)
        release = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
        partial = root / "releases" / f".partial-{release}"
        try:
            files = extract(zip_path, partial, max_bytes)
            final = root / "releases" / release
            partial.rename(final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    link = root / f".current.{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(Path("releases") / release)
    os.replace(link, root / "current")
    now = time.time()
    state.update(url=url, release=release, files=files, fetched_at=now, checked_at=now)
    state["fetched"] = email.utils.formatdate(now, usegmt=True)
    write_state(root, state)
    prune(root, keep)
    return Result("synced", release, files, time.monotonic() - started)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="typostream-advisories-sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("ADVISORIES_URL") or DEFAULT_URL, help="OSV zip URL")
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("ADVISORIES_DIR") or DEFAULT_DIR))
    parser.add_argument("--every", type=float, default=0, help="repeat every N seconds (0: sync once)")
    parser.add_argument("--max-age", type=float, default=0, help="skip if the tree is younger (seconds)")
    parser.add_argument("--keep", type=int, default=2, help="releases kept (current + previous)")
    parser.add_argument("--max-bytes", type=int, default=8 << 30, help="download / extracted size cap")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per network read")
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="exit 0 when a sync fails but a tree from an earlier one exists",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be at least 1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    failed = False
    while True:
        try:
            result = sync(
                args.dir,
                args.url,
                max_age=args.max_age,
                keep=args.keep,
                max_bytes=args.max_bytes,
                timeout=args.timeout,
            )
            failed = False
            log(
                f"{result.outcome}: {result.files} advisories ({SUBDIR}) from {shown(args.url)} in "
                f"{result.seconds:.1f}s -> {args.dir / 'current' / SUBDIR} (release {result.release})"
            )
        except (SyncError, OSError) as exc:
            kept = current_release(args.dir)
            failed = not (args.allow_stale and kept is not None)
            note = f" (--allow-stale: release {kept.name} stays in use)" if kept and not failed else ""
            log(f"failed: {exc}; the current tree is unchanged{note}")
        if not args.every or stop.wait(args.every):
            return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

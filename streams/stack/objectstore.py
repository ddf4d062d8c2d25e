"""A small S3-compatible object store on local files: durable storage for the embedded broker.

This Tansu build has two storage engines, ``memory://`` (lost when the broker stops) and ``s3://``
(``postgres://`` and ``sqlite://`` are not compiled in: ``FeatureNotEnabled``). So the durable
embedded stack runs Tansu on ``s3://tansu/`` against this server, bound to 127.0.0.1, which keeps
every object as a file under ``<data_dir>/broker``: broker restarts and ``stack down``/``stack up``
keep topics, records and committed offsets.

It implements the part of the S3 API that Tansu's object_store client uses: PUT (with
``If-None-Match: *`` and ``If-Match: <etag>`` compare-and-swap, which Tansu relies on for its
watermarks and metadata), GET/HEAD (``If-None-Match`` → 304, ``If-Match``, ``Range``), DELETE,
multi-object delete (``POST ?delete``) and ListObjectsV2 (prefix, ``/`` delimiter, start-after,
continuation). Multipart uploads and copies answer 501. Requests are not authenticated: the
server only listens on the loopback address, for one user's development stack.

Writes go to a temporary file that is fsynced and renamed into place, so an object is either the
old or the new version, also after a crash. Compare-and-swap is atomic because the server is one
asyncio loop that checks and writes without awaiting in between.

Run: ``python -m typostream.streams.stack.objectstore --listen 127.0.0.1:PORT --root DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import signal
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

from typostream.streams.stack.processes import LOCALHOST

NAME = "objects"
SUFFIX = "~obj"
"""Appended to object files, so an object ``a/b`` and the objects under ``a/b/`` can coexist."""
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_MAX_KEYS = 1000


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FileObjectStore:
    """Objects of every bucket as files under ``root/<bucket>/``."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.tmp = self.root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # half-written objects of a crashed run
            leftover.unlink(missing_ok=True)
        self._etags: dict[Path, tuple[int, int, str]] = {}

    def _bucket(self, bucket: str) -> Path:
        if not bucket or bucket.startswith(".") or "/" in bucket:
            raise S3Error(400, "InvalidBucketName", f"bad bucket name {bucket!r}")
        return self.root / bucket

    def path(self, bucket: str, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or p.endswith(SUFFIX) for p in parts):
            raise S3Error(400, "InvalidArgument", f"unsupported key {key!r}")
        return self._bucket(bucket).joinpath(*parts[:-1], parts[-1] + SUFFIX)

    def etag(self, path: Path) -> str | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        cached = self._etags.get(path)
        if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
            return cached[2]
        tag = f'"{hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()}"'
        self._etags[path] = (st.st_mtime_ns, st.st_size, tag)
        return tag

    def put(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / uuid.uuid4().hex
        with open(tmp, "wb") as handle:
            handle.write(data)
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        st = path.stat()
        tag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
        self._etags[path] = (st.st_mtime_ns, st.st_size, tag)
        return tag

    def delete(self, bucket: str, key: str) -> None:
        path = self.path(bucket, key)
        path.unlink(missing_ok=True)
        self._etags.pop(path, None)
        top = self._bucket(bucket)
        parent = path.parent
        while parent != top and top in parent.parents:  # no empty "directories" left to list
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(
        self, bucket: str, prefix: str, delimiter: str | None, after: str
    ) -> Iterator[tuple[str, Path | None]]:
        """``(key, path)`` for objects and ``(common_prefix, None)``, sorted, after ``after``."""
        top = self._bucket(bucket)
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = top.joinpath(*base.split("/")) if base else top
        found: list[tuple[str, Path | None]] = []
        if delimiter == "/":
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for entry in os.scandir(start):
                    rel = f"{base}/{entry.name}" if base else entry.name
                    if entry.is_dir():
                        if f"{rel}/".startswith(prefix):
                            found.append((f"{rel}/", None))
                    elif entry.name.endswith(SUFFIX) and rel[: -len(SUFFIX)].startswith(prefix):
                        found.append((rel[: -len(SUFFIX)], Path(entry.path)))
        else:
            for dirpath, _dirs, files in os.walk(start):
                rel_dir = os.path.relpath(dirpath, top).replace(os.sep, "/")
                for name in files:
                    if name.endswith(SUFFIX):
                        key = (name if rel_dir == "." else f"{rel_dir}/{name}")[: -len(SUFFIX)]
                        if key.startswith(prefix):
                            found.append((key, Path(dirpath) / name))
        found.sort(key=lambda item: item[0])
        return (item for item in found if item[0] > after)


def _error(exc: S3Error) -> web.Response:
    body = f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message></Error>"
    return web.Response(status=exc.status, text=body, content_type="application/xml")


def _meta_headers(store: FileObjectStore, path: Path) -> dict[str, str]:
    st = path.stat()
    return {
        "ETag": store.etag(path) or "",
        "Last-Modified": formatdate(st.st_mtime, usegmt=True),
        "Accept-Ranges": "bytes",
    }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class S3App:
    """The HTTP front of ``FileObjectStore`` (path-style URLs: ``/<bucket>/<key>``)."""

    def __init__(self, store: FileObjectStore) -> None:
        self.store = store

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            bucket, _, key = request.path.lstrip("/").partition("/")
            if not bucket:
                return web.Response(text="<ListAllMyBucketsResult/>", content_type="application/xml")
            if not key:
                return await self._bucket(request, bucket)
            if request.method in ("GET", "HEAD"):
                return self._get(request, bucket, key)
            if request.method == "PUT":
                return await self._put(request, bucket, key)
            if request.method == "DELETE":
                self.store.delete(bucket, key)
                return web.Response(status=204)
            raise S3Error(501, "NotImplemented", f"{request.method} on an object is not supported")
        except S3Error as exc:
            return _error(exc)

    async def _bucket(self, request: web.BaseRequest, bucket: str) -> web.StreamResponse:
        query = request.query
        if request.method == "PUT":
            self.store._bucket(bucket).mkdir(parents=True, exist_ok=True)
            return web.Response()
        if request.method == "POST" and "delete" in query:
            root = ET.fromstring(await request.content.read())
            keys = [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]
            for key in keys:
                self.store.delete(bucket, key)
            deleted = "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="{_NS}">{deleted}</DeleteResult>'
            )
            return web.Response(text=body, content_type="application/xml")
        if request.method in ("GET", "HEAD") and "uploads" not in query:
            return self._list(bucket, query)
        raise S3Error(501, "NotImplemented", "multipart uploads are not supported")

    def _list(self, bucket: str, query: object) -> web.Response:
        q = dict(query)  # type: ignore[call-overload]
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter") or None
        if delimiter not in (None, "/"):
            raise S3Error(501, "NotImplemented", "only the '/' delimiter is supported")
        after = q.get("continuation-token") or q.get("start-after") or ""
        max_keys = min(int(q.get("max-keys", _MAX_KEYS)), _MAX_KEYS)
        contents: list[str] = []
        prefixes: list[str] = []
        last, truncated = "", False
        for name, path in self.store.list(bucket, prefix, delimiter, after):
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            last = name
            if path is None:
                prefixes.append(f"<CommonPrefixes><Prefix>{escape(name)}</Prefix></CommonPrefixes>")
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # deleted while listing
                continue
            contents.append(
                f"<Contents><Key>{escape(name)}</Key><LastModified>{_iso(st.st_mtime)}</LastModified>"
                f"<Size>{st.st_size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        token = f"<NextContinuationToken>{escape(last)}</NextContinuationToken>" if truncated else ""
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_NS}">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"{''.join(contents)}{''.join(prefixes)}{token}</ListBucketResult>"
        )
        return web.Response(text=body, content_type="application/xml")

    def _get(self, request: web.BaseRequest, bucket: str, key: str) -> web.StreamResponse:
        path = self.store.path(bucket, key)
        etag = self.store.etag(path)
        if etag is None:
            raise S3Error(404, "NoSuchKey", f"{bucket}/{key} does not exist")
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match not in ("*", etag):
            raise S3Error(412, "PreconditionFailed", "If-Match does not match")
        if_none_match = request.headers.get("If-None-Match")
        headers = _meta_headers(self.store, path)
        if if_none_match is not None and if_none_match in ("*", etag):
            return web.Response(status=304, headers=headers)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise S3Error(404, "NoSuchKey", f"{bucket}/{key} does not exist") from exc
        status, body = 200, data
        ranged = request.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[len("bytes=") :].partition("-")
            size = len(data)
            start, end = (size - int(last), size - 1) if not first else (int(first), int(last or size - 1))
            start, end = max(start, 0), min(end, size - 1)
            if start > end:
                raise S3Error(416, "InvalidRange", f"range {ranged} outside {size} bytes")
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=status, headers=headers)
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/octet-stream"
        )

    async def _put(self, request: web.BaseRequest, bucket: str, key: str) -> web.StreamResponse:
        if "x-amz-copy-source" in request.headers or "uploadId" in request.query:
            raise S3Error(501, "NotImplemented", "copies and multipart uploads are not supported")
        path = self.store.path(bucket, key)
        data = await request.content.read()  # no 1 MiB cap (BaseRequest.read has one)
        # From here to the write nothing awaits: the check and the write are one atomic step.
        current = self.store.etag(path)
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match == "*" and current is not None:
            raise S3Error(412, "PreconditionFailed", f"{bucket}/{key} already exists")
        if_match = request.headers.get("If-Match")
        if if_match is not None and (current is None or if_match not in ("*", current)):
            raise S3Error(412, "PreconditionFailed", f"{bucket}/{key} changed")
        return web.Response(headers={"ETag": self.store.put(path, data)})


def command(port: int, root: Path, python: str | None = None) -> list[str]:
    import sys

    return [
        python or sys.executable,
        "-m",
        "typostream.streams.stack.objectstore",
        "--listen",
        f"{LOCALHOST}:{port}",
        "--root",
        str(root),
    ]


def url(port: int) -> str:
    return f"http://{LOCALHOST}:{port}"


def ping_ready(port: int, timeout: float = 1.0) -> bool:
    with urllib.request.urlopen(url(port) + "/", timeout=timeout) as response:
        return bool(response.status == 200)


def tansu_environment(port: int, base: dict[str, str]) -> dict[str, str]:
    """Tansu's S3 client reads its endpoint and credentials from ``AWS_*``: set ours, drop others."""
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT=url(port),
        AWS_ALLOW_HTTP="true",
        AWS_ACCESS_KEY_ID="typostream",
        AWS_SECRET_ACCESS_KEY="typostream",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


async def serve(host: str, port: int, root: Path, *, fsync: bool = True) -> None:
    """Serve until SIGTERM or SIGINT."""
    app = S3App(FileObjectStore(root, fsync=fsync))
    runner = web.ServerRunner(web.Server(app.handle), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="S3-compatible object store on local files (127.0.0.1)")
    parser.add_argument("--listen", default=f"{LOCALHOST}:9000", help="host:port")
    parser.add_argument("--root", type=Path, required=True, help="directory that holds the objects")
    parser.add_argument("--no-fsync", action="store_true", help="skip fsync (survives process crashes only)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve(host or LOCALHOST, int(port), args.root, fsync=not args.no_fsync))


if __name__ == "__main__":
    main()

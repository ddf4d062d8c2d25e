"""Every typostream error, in one tree named by condition (what went wrong, not which module noticed).

Callers catch the condition they can handle; the CLI catches :class:`TypostreamError` once and
prints its message as one line (exit 2). ``ValueError`` is mixed in where the cause is a bad value
the user gave, so generic callers (argument parsers, the HTTP API) can still map it to a 4xx.

::

    TypostreamError
    ├── ConfigError (ValueError)            a setting, DSN, path or file the user supplied is wrong
    │   ├── UnknownRegistryError            a registry name outside vocabulary.REGISTRIES
    │   ├── NameListError                   a watchlist/allowlist/scan file is unreadable
    │   ├── PatternFileError                the pattern JSON is unreadable or malformed
    │   ├── AdvisoryFileError               an OSV advisory file is unreadable or not JSON
    │   │   └── AdvisoryIndexError          the advisory index is unreadable or of another format version
    │   ├── InvalidDsnError                 a ClickHouse DSN is malformed
    │   ├── CursorFileError                 a feed cursor file is unreadable or unwritable
    │   └── EventFileError                  a JSON Lines file to produce is unreadable, not gzip or truncated
    ├── InvalidInputError (ValueError)      data handed to us cannot be processed
    │   ├── InvalidEventError               an input message (goes to the DLQ with ``reason``)
    │   ├── InvalidRowError                 a row a sink's table cannot take
    │   │   └── UndeliverableAlertError     an alert no retry will deliver (DLQ reason ``undeliverable``)
    │   ├── ReadOnlyQueryError              an ad hoc query that is not one read-only statement
    │   ├── QueryError                      the database refused an ad hoc query (syntax, unknown column…)
    │   ├── QueryLimitError                 an ad hoc query hit a limit (``limit``: seconds/rows/bytes/memory)
    │   ├── ManifestError                   a manifest/lockfile to scan is unreadable or malformed
    │   ├── PackageSpecError                a NAME / NAME==VERSION / NAME@VERSION to scan is malformed
    │   └── ResolutionError                 what an install command would install cannot be worked out
    ├── UnsupportedRegistryError (ValueError)  a known registry this component has no client for
    ├── UpstreamError                       a request to a registry/HTTP service failed (``url``)
    │   ├── UpstreamUnavailableError        5xx / 429 / timeout / connection on every attempt
    │   │   └── UpstreamRateLimitedError    ... and the service said when to retry (``retry_after_s``)
    │   ├── UpstreamHTTPError               an unexpected 4xx (``status``)
    │   └── UpstreamResponseError           the body is not the document expected
    ├── StoreError                          a database (ClickHouse) refused or failed a statement
    │   ├── StoreUnavailableError           the database cannot be opened or reached
    │   └── SchemaMigrationError            the schema history disagrees with the shipped migrations
    ├── BrokerUnavailableError              Kafka cannot be reached
    ├── SendStoppedError                    sending records stopped part-way (``sent`` were acknowledged)
    ├── IndexCacheError                     a cached detector index is damaged or of another format
    └── StackError                          the embedded stack cannot be started/inspected/stopped
        ├── BinaryNotFoundError             a server binary (tansu, redis-server) is missing
        └── StartupError                    a server exited or did not become ready in time
"""

from __future__ import annotations

from pathlib import Path

from typostream.agents.domain.vocabulary import DeadLetterReason

__all__ = [
    "AdvisoryFileError",
    "BinaryNotFoundError",
    "BrokerUnavailableError",
    "ConfigError",
    "CursorFileError",
    "InvalidDsnError",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidRowError",
    "ManifestError",
    "NameListError",
    "PackageSpecError",
    "PatternFileError",
    "QueryError",
    "QueryLimitError",
    "ReadOnlyQueryError",
    "StackError",
    "StartupError",
    "StoreError",
    "StoreUnavailableError",
    "TypostreamError",
    "UndeliverableAlertError",
    "UnknownRegistryError",
    "UnsupportedRegistryError",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamRateLimitedError",
    "UpstreamResponseError",
    "UpstreamUnavailableError",
    "internal_error",
]


class TypostreamError(Exception):
    """Root of every typostream error."""


# --- the user's configuration ------------------------------------------------------------------
class ConfigError(TypostreamError, ValueError):
    """A setting, DSN, path or file the user supplied is wrong; the message says which and why."""


class UnknownRegistryError(ConfigError):
    """The registry is not one typostream knows; pass one of the names listed in the message."""

    def __init__(self, registry: str, known: tuple[str, ...]) -> None:
        self.registry = registry
        self.known = known
        super().__init__(f"unknown registry {registry!r}; expected one of: {', '.join(known)}")


class NameListError(ConfigError):
    """A watchlist/allowlist/scan file could not be read or parsed; fix or point at another file."""


class PatternFileError(ConfigError):
    """The pattern set file is unreadable or a pattern is malformed; the message names the pattern."""


class AdvisoryFileError(ConfigError):
    """An OSV advisory file is unreadable or not JSON; the message names the file."""


class InvalidDsnError(ConfigError):
    """The ClickHouse DSN is malformed; use ``chdb://``, ``chdb:///abs/path`` or ``http(s)://...``."""


class CursorFileError(ConfigError):
    """The cursor file cannot be read or written; fix its permissions or delete it to start afresh."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(f"cursor file {path}: {detail}")


# --- data we were handed ---------------------------------------------------------------------
class InvalidInputError(TypostreamError, ValueError):
    """Data handed to typostream cannot be processed as it is."""


class InvalidEventError(InvalidInputError):
    """The input message is not a valid publish event; ``reason`` is a stable DLQ code."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DeadLetterReason = reason
        self.detail = detail


class InvalidRowError(InvalidInputError):
    """A row handed to a sink lacks a column or holds a value that cannot be converted."""


class ReadOnlyQueryError(InvalidInputError):
    """An ad hoc query must be one read-only SELECT the guard allows; the message names the rule."""


class ManifestError(InvalidInputError):
    """A manifest or lockfile cannot be read or parsed; the message names the file (and line) and why."""


class PackageSpecError(InvalidInputError):
    """A package to scan is not ``NAME``, ``NAME==VERSION`` (PyPI) or ``NAME@VERSION`` (npm)."""


class QueryError(InvalidInputError):
    """The database refused an ad hoc query; the message is its own (scrubbed), ``code`` its error code."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class QueryLimitError(InvalidInputError):
    """An ad hoc query exceeded a limit; ``limit`` is which (seconds, rows, bytes, memory). Narrow it."""

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class UnsupportedRegistryError(TypostreamError, ValueError):
    """The registry is known but this component has no client for it; the message lists those it has."""

    def __init__(self, registry: str, supported: tuple[str, ...] = ("npm", "pypi")) -> None:
        self.registry = registry
        super().__init__(
            f"unsupported registry {registry!r}; expected {' or '.join(repr(s) for s in supported)}"
        )


# --- services we talk to ---------------------------------------------------------------------
class UpstreamError(TypostreamError):
    """A request to a registry or another HTTP service failed; ``url`` is the request."""

    def __init__(self, message: str, url: str) -> None:
        self.url = url
        super().__init__(f"{message} ({url})")


class UpstreamUnavailableError(UpstreamError):
    """5xx, 429, timeouts or connection errors on every attempt; retry later."""


class UpstreamHTTPError(UpstreamError):
    """The service answered an unexpected client error; ``status`` is the code. Check the base URL."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        super().__init__(f"registry answered HTTP {status}", url)


class UpstreamResponseError(UpstreamError):
    """The body is not the document expected (wrong base URL, proxy error page?)."""


class StoreError(TypostreamError):
    """The analytics database refused or failed a statement (the message has the reason, no secrets)."""


class StoreUnavailableError(StoreError):
    """The database could not be opened or reached; check the DSN, the server, or the chDB path lock."""


class BrokerUnavailableError(TypostreamError):
    """Kafka cannot be reached; the message names the bootstrap servers."""


class StackError(TypostreamError):
    """The embedded stack cannot be started, inspected or stopped."""


class BinaryNotFoundError(StackError):
    """A server binary is missing; the message says how to install it."""


class StartupError(StackError):
    """A server exited early or did not answer its readiness probe; see its log file."""


def internal_error(exc: Exception) -> InvalidEventError:
    """Wrap an unexpected failure so the message is dead-lettered instead of stalling its partition."""
    return InvalidEventError("internal_error", f"{type(exc).__name__}: {exc}"[:500])


class UndeliverableAlertError(InvalidRowError, InvalidEventError):
    """A threat alert a target refused for good (4xx other than 429) or after every attempt.

    Also an :class:`InvalidEventError` with reason ``undeliverable``, so the record is dead-lettered
    with that reason (its ``detail`` names the target, masked, and the last answer).
    """

    def __init__(self, detail: str) -> None:
        InvalidEventError.__init__(self, "undeliverable", detail)


class UpstreamRateLimitedError(UpstreamUnavailableError):
    """The service is rate limiting or down for now and said when to retry (``Retry-After``)."""

    def __init__(self, message: str, url: str, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"{message}; retry after {retry_after_s:g} s", url)


# --- appended: producing a file to Kafka -----------------------------------------------------
class EventFileError(ConfigError):
    """A JSON Lines file to produce cannot be read to its end; the message names the file and line."""


class SendStoppedError(TypostreamError):
    """Sending stopped part-way: ``sent`` records were acknowledged before ``cause`` stopped it."""

    def __init__(self, sent: int, cause: BaseException) -> None:
        self.sent = sent
        self.cause = cause
        super().__init__(f"stopped after sending {sent} record(s): {cause}")


__all__ += ["EventFileError", "SendStoppedError"]


# --- appended: the install-time guard ----------------------------------------------------------
class ResolutionError(InvalidInputError):
    """What an install command would install cannot be worked out: the command is not one the guard
    knows, the installer failed to resolve it, or its answer (report, lockfile) is unreadable."""


__all__ += ["ResolutionError"]


# --- appended: the on-disk advisory index ----------------------------------------------------
class AdvisoryIndexError(AdvisoryFileError):
    """The advisory index (``typostream advisories sync``) is unreadable, damaged or of another format
    version; the message names the file. Run ``typostream advisories sync SOURCE`` again."""


__all__ += ["AdvisoryIndexError"]


# --- appended: versioned ClickHouse migrations --------------------------------------------------
class SchemaMigrationError(StoreError):
    """The database records a migration whose file has changed since it was applied (the message names
    it), or a migration failed; the database is left as the last completed migration made it."""


__all__ += ["SchemaMigrationError"]


# --- appended: the detector's index cache -------------------------------------------------------
class IndexCacheError(TypostreamError):
    """A cached detector index (``<data_dir>/cache/detector-*.bin``) cannot be used: damaged, of
    another format, or data the format cannot hold. Never shown to a user: the caller rebuilds."""


__all__ += ["IndexCacheError"]

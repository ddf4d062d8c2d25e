"""Tables the detection derives once per process from its bundled data, kept with the cached index.

Some techniques need a table computed from a whole data file: the look-alike fold table (the
900 kB Unicode confusables table, ~10 ms), the word families of a registry's popular names
(parsing its snapshot and counting: npm ~60 ms), the npm scopes that were unscoped families.
Computed on first use, they cost a process that starts from the index cache — whose point is
not to read those files — that much in the middle of its first scans. So each such table is a
function decorated with :func:`table`: it is computed once per process on first use, as before,
unless a value was handed over first (:func:`adopt`) by whoever read it back with a cached index
(``agents/adapters/index_cache.py`` stores :func:`values` next to the index it writes; its key
covers the snapshot, the confusables table and this package's source, so what it hands over is
what the function would compute).

A table depends on the registry it is called with (``per="registry"``), on one fixed registry's
data (``per="npm"``), or on none (``per=""``: the same for every registry); its value is plain
data (str, int, float, bool, tuples, lists, dicts, sets, frozensets), so that a file can hold it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

__all__ = ["adopt", "forget", "table", "tables", "values"]

_T = TypeVar("_T")


class _Table:
    __slots__ = ("compute", "name", "per")

    def __init__(self, name: str, per: str, compute: Callable[..., Any]) -> None:
        self.name = name
        self.per = per
        self.compute = compute

    def applies_to(self, registry: str) -> bool:
        """Whether a cached index of ``registry`` carries this table."""
        return self.per in ("", "registry", registry)


_TABLES: dict[str, _Table] = {}
_VALUES: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def table(name: str, per: str = "") -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Register a derived table: ``compute(registry)`` with ``per="registry"``, else ``compute()``.

    The decorated function returns the table, computed once per process (or adopted)."""

    def register(compute: Callable[..., _T]) -> Callable[..., _T]:
        if name in _TABLES:
            raise ValueError(f"derived table {name!r} is defined twice")
        _TABLES[name] = _Table(name, per, compute)

        if per == "registry":

            def by_registry(registry: str) -> _T:
                key = (name, registry)
                value = _VALUES.get(key, _MISSING)
                if value is _MISSING:
                    value = _compute(key, lambda: compute(registry))
                return value  # type: ignore[no-any-return]

            get: Callable[..., _T] = by_registry
        else:
            key = (name, per)

            def fixed() -> _T:
                value = _VALUES.get(key, _MISSING)
                if value is _MISSING:
                    value = _compute(key, compute)
                return value  # type: ignore[no-any-return]

            get = fixed
        get.__name__, get.__qualname__, get.__doc__ = compute.__name__, compute.__qualname__, compute.__doc__
        get.__wrapped__ = compute  # type: ignore[attr-defined]
        return get

    return register


_MISSING: Any = object()


def _compute(key: tuple[str, str], compute: Callable[[], Any]) -> Any:
    value = compute()
    with _LOCK:
        return _VALUES.setdefault(key, value)  # a value adopted or computed meanwhile wins


def _key(name: str, registry: str) -> tuple[str, str]:
    per = _TABLES[name].per
    return (name, registry if per == "registry" else per)


def tables(registry: str) -> tuple[str, ...]:
    """The names of the tables a cached index of ``registry`` carries."""
    return tuple(sorted(name for name, t in _TABLES.items() if t.applies_to(registry)))


def values(registry: str) -> dict[str, Any]:
    """Every table a cached index of ``registry`` carries, computed now if not yet."""
    out: dict[str, Any] = {}
    for name in tables(registry):
        t = _TABLES[name]
        key = _key(name, registry)
        value = _VALUES.get(key, _MISSING)
        if value is _MISSING:
            value = _compute(key, partial(t.compute, registry) if t.per == "registry" else t.compute)
        out[name] = value
    return out


def adopt(registry: str, found: Mapping[str, Any]) -> None:
    """Use ``found`` (what :func:`values` gave for ``registry``, read back) for the tables not
    computed yet in this process. ``ValueError`` when it does not name exactly the tables of
    ``registry`` (another version of the code wrote it); nothing is adopted then."""
    expected = tables(registry)
    if set(found) != set(expected):
        raise ValueError(f"derived tables {sorted(found)} are not those of {registry}: {list(expected)}")
    with _LOCK:
        for name, value in found.items():
            _VALUES.setdefault(_key(name, registry), value)


def forget() -> None:
    """Drop every computed or adopted value (tests)."""
    with _LOCK:
        _VALUES.clear()

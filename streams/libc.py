"""The C library's allocator functions the worker tunes its memory with (glibc only)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any


def glibc_function(name: str) -> Callable[..., Any] | None:
    """glibc's function ``name`` (``malloc_trim``, ``mallopt``); None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function: Callable[..., Any] = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    return function

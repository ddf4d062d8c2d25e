"""Errors raised by the embedded stack.

StackError                  the embedded stack cannot be started, inspected or stopped
 ├── BinaryNotFoundError    a server binary (tansu, redis-server) is missing
 └── StartupError           a server exited or did not become ready in time
"""

from __future__ import annotations


class StackError(RuntimeError):
    """The embedded stack cannot be started, inspected or stopped."""


class BinaryNotFoundError(StackError):
    """A server binary is missing; the message says how to install it."""


class StartupError(StackError):
    """A server exited early or did not answer its readiness probe; see its log file."""

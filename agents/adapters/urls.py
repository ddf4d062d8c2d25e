"""URL helpers shared by every adapter that logs or prints a URL/DSN."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_plus

__all__ = ["MASK", "is_secret_parameter", "mask_url"]

MASK: Final = "***"

# A query/fragment parameter whose value is a credential: its name, lowercased with everything but
# letters and digits removed, contains one of these (``X-Amz-Security-Token``, ``client_secret``,
# ``access_key``, ``sslpassword``, ``oauth_signature``...) or is one of the short names below.
_SECRET_WORDS: Final = (
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "sessionkey",
    "auth",
    "credential",
    "signature",
)
_SECRET_NAMES: Final = frozenset({"key", "sig", "pw", "sas"})
_AUTHORITY: Final = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//")
# A parameter name right after a separator: ``?name=``, ``&name=``, ``;name=`` or ``#name=``.
_PARAMETER: Final = re.compile(r"[?&;#]([^=&;#?]*)=")


def is_secret_parameter(name: str) -> bool:
    """Whether a URL parameter called ``name`` carries a credential (case and separators ignored)."""
    key = re.sub(r"[^a-z0-9]", "", unquote_plus(name).lower())
    return key in _SECRET_NAMES or any(word in key for word in _SECRET_WORDS)


def mask_url(url: str) -> str:
    """``url`` with every credential replaced by ``***``, so it can be logged or printed.

    Never raises (a malformed URL, e.g. a port out of range, is masked all the same). Hidden:

    * the password of the userinfo, ``scheme://user:PASSWORD@host``. It runs to the **last** ``@``
      of the URL, so an unencoded ``@``, ``/``, ``?`` or ``#`` in a password is still hidden (a
      strict parser would end the host there and print the rest as path, query or fragment).
      The cost: in a URL whose path or query holds an ``@`` after a ``:`` (``host:8080/x@y``),
      everything up to that ``@`` is masked too; the username stays visible.
    * the value of every query (or fragment, or ``;``) parameter named like a credential
      (:func:`is_secret_parameter`: ``password``, ``pass``, ``pwd``, ``token``, ``secret``,
      ``access_key``, ``api_key``, ``X-Amz-Signature``...), up to the next ``&`` (where every URL
      parser ends a value; a literal ``&`` in such a value must be written ``%26``).

    Where the two readings overlap (an unencoded ``?token=`` inside a password), the union is
    masked: when unsure, hide more.
    """
    spans: list[tuple[int, int]] = []
    match = _AUTHORITY.match(url)
    start = match.end() if match else 0
    at = url.rfind("@", start)
    if at >= 0:
        colon = url.find(":", start, at)
        if colon >= 0:  # user:password@ (a userinfo without ":" is only a user name)
            spans.append((colon + 1, at))
    for param in _PARAMETER.finditer(url, start):
        if is_secret_parameter(param.group(1)):
            end = url.find("&", param.end())
            spans.append((param.end(), len(url) if end < 0 else end))
    if not spans:
        return url
    out: list[str] = []
    position = 0
    for begin, end in _merged(spans):
        out.append(url[position:begin])
        out.append(MASK)
        position = end
    out.append(url[position:])
    return "".join(out)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged

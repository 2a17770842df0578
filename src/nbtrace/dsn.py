"""Database locations fit to print, and the URL userinfo pattern behind them.

Why a module of its own: the store prints its own location (:mod:`nbtrace.store.postgres`) and
the kernel's capture masks the values it records (:mod:`nbtrace.capture.redact`); neither may
import the other, and both must read a URL's ``user:password@`` the same way. This module
imports nothing from nbtrace.
"""

from __future__ import annotations

import re

# ``scheme://userinfo@``: the userinfo runs up to the last ``@`` before the first ``/``, ``?``,
# ``#`` or whitespace, so an unencoded ``@`` inside a password is still removed with it.
URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^\s/?#]*)@")

# ``password=...`` as a libpq keyword (quoted or not) or as a URL query parameter.
_PASSWORD_KEYWORD = re.compile(
    r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s&#]+)", re.IGNORECASE
)


def _mask_password(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    userinfo = match.group("userinfo")
    user, sep, _password = userinfo.partition(":")
    if not sep:
        return match.group(0)
    return f"{scheme}://{user}:***@"


def redact_dsn(dsn: str) -> str:
    """A database location fit to print: the user kept, any password replaced by ``***``.

    Handles the URL form (``postgresql://alice:pw@host/db``), the ``?password=`` query
    parameter, and the libpq keyword form (``host=h user=alice password='p w'``).
    """
    out = URL_USERINFO.sub(_mask_password, dsn) if "@" in dsn else dsn
    return _PASSWORD_KEYWORD.sub(lambda m: f"{m.group('key')}***", out)

"""Keeping secrets out of the store: secret-looking names, credentials in URLs and DSNs.

Why here and not at the store: the design promises that secrets are "never stored, anywhere",
and the cheapest way to keep that promise is to drop them where they are captured (environment
variables, git remotes, store locations printed in messages), before any value leaves the
kernel.
"""

from __future__ import annotations

import re

#: Substrings (upper case) that make an environment variable name look secret.
SECRET_MARKERS: tuple[str, ...] = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "AUTH",
    "CREDENTIAL",
)

#: Names that are secret although they may not contain a marker (kept explicit on purpose).
SECRET_NAMES: frozenset[str] = frozenset({"PGPASSWORD"})

#: Schemes where a user name alone (``ssh://git@host``) is an account, not a token.
_USER_ONLY_OK_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git", "sftp"})

# ``scheme://userinfo@``: the userinfo runs up to the last ``@`` before the first ``/``, ``?``,
# ``#`` or whitespace, so an unencoded ``@`` inside a password is still removed with it.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^\s/?#]*)@")

# ``password=...`` as a libpq keyword (quoted or not) or as a URL query parameter.
_PASSWORD_KEYWORD = re.compile(
    r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s&#]+)", re.IGNORECASE
)


def is_secret_name(name: str) -> bool:
    """True when an environment variable called ``name`` may hold a secret.

    Why a substring test: false positives (``KEYBOARD``, ``AUTHOR``) only cost a variable that
    is not recorded; a false negative leaks a credential into a shared store.
    """
    upper = name.upper()
    return upper in SECRET_NAMES or any(marker in upper for marker in SECRET_MARKERS)


def _strip_userinfo(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    userinfo = match.group("userinfo")
    if ":" not in userinfo and scheme.lower() in _USER_ONLY_OK_SCHEMES:
        return match.group(0)  # ssh://git@host/...: an account name, not a credential
    return f"{scheme}://"


def strip_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` (or lone ``token@``) part of every URL removed.

    Works on a bare URL or on any text holding several URLs. ``https://TOKEN@host`` loses the
    token (GitHub-style token remotes); ``ssh://git@host`` and scp-style remotes such as
    ``git@github.com:o/r.git`` keep their account name, which is not a secret.
    """
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(_strip_userinfo, text)


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
    out = _URL_USERINFO.sub(_mask_password, dsn) if "@" in dsn else dsn
    return _PASSWORD_KEYWORD.sub(lambda m: f"{m.group('key')}***", out)

"""Keeping secrets out of the store: secret-looking names, credentials in URLs and DSNs.

Why here and not at the store: the design promises that secrets are "never stored, anywhere",
and the cheapest way to keep that promise is to drop them where they are captured (environment
variables, git remotes, store locations printed in messages), before any value leaves the
kernel.
"""

from __future__ import annotations

import re

from ..dsn import URL_USERINFO
from ..dsn import redact_dsn as redact_dsn  # moved to nbtrace.dsn: the store prints DSNs too

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
    return URL_USERINFO.sub(_strip_userinfo, text)


# ---------------------------------------------------------------------- any captured value
# ``Password=...`` in libpq, ODBC/ADO.NET (``Server=x;Password=p;``), JDBC and URL query forms;
# the value runs to the next ``;``, ``&``, ``#``, whitespace or closing quote.
_SECRET_KEYWORD = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&#;'\"]+)",
    re.IGNORECASE,
)
# ODBC / ADO.NET / JDBC style (``Server=x;Password=p w;``): the value runs to the next ``;``.
_SEMICOLON_PASSWORD = re.compile(
    r"(?P<key>(?:^|;)\s*(?:password|pwd)\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^;]*)",
    re.IGNORECASE,
)
# ``?name=value`` / ``&name=value`` in a URL whose name looks secret (private_token, sig, ...).
_QUERY_PARAM = re.compile(r"(?P<sep>[?&])(?P<name>[^=&#\s]+)=(?P<value>[^&#\s]*)")
#: Query parameter names (lower case, or containing these) that carry a credential.
_SECRET_QUERY = ("token", "secret", "password", "passwd", "key", "sig", "signature",
                 "credential", "auth", "session", "code")
# Webhook services whose URL path is the credential.
_WEBHOOK = re.compile(
    r"(?P<base>https?://(?:hooks\.slack\.com|(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks"
    r"|[\w.-]*webhook\.office\.com|outlook\.office\.com/webhook|chat\.googleapis\.com"
    r"|api\.telegram\.org/bot)[^\s/]*)(?P<path>/[^\s?#'\"]*)",
    re.IGNORECASE,
)
# A path segment that looks like a random secret: 24+ URL-safe characters mixing letters and
# digits (webhook keys of other services, signed-URL tokens).
_SECRET_SEGMENT = re.compile(r"(?<=/)(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])"
                             r"[A-Za-z0-9_\-]{24,}(?=[/?#\s'\"]|$)")


def _mask_query(match: re.Match[str]) -> str:
    name = match.group("name").lower()
    if any(marker in name for marker in _SECRET_QUERY):
        return f"{match.group('sep')}{match.group('name')}=***"
    return match.group(0)


def redact_value(text: str) -> str:
    """``text`` (an environment value, a git remote, a pip index URL) with credentials masked.

    Removes ``user:password@`` from URLs, masks ``password=``/``Password=``/``pwd=``/``token=``
    keyword values (libpq and ODBC connection strings), secret-looking URL query parameters
    (``?private_token=``, ``&sig=``), the secret path of webhook URLs (Slack, Discord, Teams,
    Google Chat, Telegram) and random-looking path segments of 24+ characters. Why this broad:
    a value is stored in a store the whole team may read; masking a harmless value costs
    little, keeping a credential costs a lot.
    """
    if not text:
        return text
    out = strip_url_credentials(text)
    if ";" in out:
        out = _SEMICOLON_PASSWORD.sub(lambda m: f"{m.group('key')}***", out)
    out = _SECRET_KEYWORD.sub(lambda m: f"{m.group('key')}***", out)
    if "://" in out:
        out = _WEBHOOK.sub(lambda m: f"{m.group('base')}/***", out)
        out = _QUERY_PARAM.sub(_mask_query, out)
        out = _SECRET_SEGMENT.sub("***", out)
    return out


# ---------------------------------------------------------------------- credentials in code
_CODE_CREDENTIALS = (
    ("a secret-named variable set to a string literal", re.compile(
        r"\b[\w]*(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key)\w*"
        r"\s*[:=]\s*[rbuf]*(['\"])[^'\"\s]{4,}\1", re.IGNORECASE)),
    ("a URL with a password", re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s/:@'\"]+:[^\s/@'\"]+@",
                                         re.IGNORECASE)),
    ("a password= connection string", re.compile(
        r"['\"][^'\"\n]*\b(?:password|pwd)\s*=\s*[^\s;'\"]{3,}", re.IGNORECASE)),
    ("an AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}")),
    ("an API key", re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)


def credential_in_code(source: str) -> str | None:
    """What credential-looking literal ``source`` holds (``"a GitHub token"``), or None.

    Why only a hint: a cell's source is stored verbatim (it is what a re-execution runs), so
    nbtrace cannot mask it; it can tell the user, at ``%load_ext``, that it will be stored.
    """
    for what, pattern in _CODE_CREDENTIALS:
        if pattern.search(source):
            return what
    return None

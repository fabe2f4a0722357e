"""Masking the secrets of a libpq connection string, in either of its two forms.

A mask that is wrong by one character prints the rest of a password, so both forms
are parsed rather than pattern-matched: a URI's user information runs to the last
``@`` of its authority (a password may hold an unencoded ``@``, ``:`` or ``/``), and
a keyword/value string follows libpq's quoting rules (single quotes, backslash
escapes). Where a string is ambiguous the mask covers more, never less.
"""

from __future__ import annotations

import re

MASK = "***"

_URI_PREFIXES = ("postgresql://", "postgres://")
# A query that is nothing but key=value pairs: an '@' inside it is a value's, not the
# end of a password that held a '?'.
_QUERY_PAIRS = re.compile(r"[A-Za-z_]\w*=[^&]*(?:&[A-Za-z_]\w*=[^&]*)*")


def _is_secret_key(key: str) -> bool:
    # password, and sslpassword (the client key's passphrase)
    return key.strip().lower().endswith("password")


def mask_dsn(dsn: str) -> str:
    """The DSN with every password replaced by ``***``; everything else kept."""
    if dsn.startswith(_URI_PREFIXES):
        return _mask_uri(dsn)
    return _mask_keywords(dsn)


def _mask_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        key, eq, _value = pair.partition("=")
        pairs.append(f"{key}={MASK}" if eq and _is_secret_key(key) else pair)
    return "&".join(pairs)


def _mask_uri(dsn: str) -> str:
    scheme, _, rest = dsn.partition("://")
    head, _, query = rest.partition("?")
    at = head.rfind("@")
    if at < 0 and "@" in query and not _QUERY_PAIRS.fullmatch(query):
        # No '@' before the first '?' but one after it, in something that is not a
        # query: the password held a '?'. Its user information ends at the last '@'.
        at = rest.rfind("@")
    if at >= 0:
        userinfo, hosts = rest[:at], rest[at + 1 :]
        user, colon, _password = userinfo.partition(":")
        userinfo = f"{user}:{MASK}@" if colon else f"{userinfo}@"
    else:
        userinfo, hosts = "", rest
    path, question, query = hosts.partition("?")
    return f"{scheme}://{userinfo}{path}{question}{_mask_query(query) if question else ''}"


# libpq's isspace() in the C locale: a non-ASCII space is part of a value.
_SPACE = " \t\n\v\f\r"


class _Unparsable(ValueError):
    pass


def _keyword_spans(text: str) -> list[tuple[str, int, int]]:
    """(keyword, value start, value end) of each ``key = value``, as libpq reads them.

    Values are either runs of non-space characters (a backslash escapes the next one)
    or single-quoted (a backslash escapes the next character, a quote included).
    """
    spans: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            return spans
        start = i
        while i < n and text[i] != "=" and text[i] not in _SPACE:
            i += 1
        key = text[start:i]
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n or text[i] != "=" or not key:
            raise _Unparsable(key)
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        value_start = i
        if i < n and text[i] == "'":
            i += 1
            while i < n and text[i] != "'":
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise _Unparsable(key)  # unterminated quote
            i += 1
        else:
            while i < n and text[i] not in _SPACE:
                i += 2 if text[i] == "\\" else 1
            i = min(i, n)
        spans.append((key, value_start, i))


_FIRST_SECRET_KEY = re.compile(r"password", re.IGNORECASE)


def _mask_keywords(dsn: str) -> str:
    try:
        spans = _keyword_spans(dsn)
    except _Unparsable:
        # libpq would refuse it too; show what comes before the first password key only.
        found = _FIRST_SECRET_KEY.search(dsn)
        return dsn if found is None else dsn[: found.start()] + f"password={MASK} (unparsable)"
    out, last = [], 0
    for key, start, end in spans:
        if _is_secret_key(key):
            out.append(dsn[last:start] + MASK)
            last = end
    out.append(dsn[last:])
    return "".join(out)

"""Masking the secrets of a libpq connection string, in either of its two forms.

A mask that is wrong by one character prints the rest of a password, so both forms
are parsed rather than pattern-matched: a URI's user information runs to the last
``@`` of its authority (a password may hold an unencoded ``@``, ``:`` or ``/``), and
a keyword/value string follows libpq's quoting rules (single quotes, backslash
escapes). Where a string is ambiguous the mask covers more, never less.
"""

from __future__ import annotations

import re
import urllib.parse

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


# ---- reading a DSN the way the daemon's driver will ---------------------------------------

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TARGET_SESSION_ATTRS = ("any", "primary", "standby", "read-write", "read-only", "prefer-standby")
_TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_KEY = re.compile(r"[A-Za-z_]\w*")


class DsnError(ValueError):
    """A DSN the daemon cannot use. The message never quotes a password."""


def dsn_options(dsn: str) -> dict[str, str]:
    """The libpq parameters a DSN sets, by keyword: a URI's query, or every pair of a
    keyword/value string (values unquoted). The last of a repeated keyword wins, as
    in libpq and asyncpg."""
    return _uri_options(dsn) if _URI.match(dsn) else _keyword_options(dsn)


def _uri_options(dsn: str) -> dict[str, str]:
    scheme = dsn.split("://", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise DsnError(f"a URI DSN starts with postgresql:// or postgres://, not {scheme}://")
    try:
        parts = urllib.parse.urlsplit(dsn)
    except ValueError as exc:  # "Invalid IPv6 URL": about brackets, never a secret
        raise DsnError(f"not a valid URI: {exc}") from exc
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at and "@" in userinfo:
        # The driver ends the user information at the first '@', and would take the
        # rest of the password for a host name: a DSN that connects nowhere, forever.
        raise DsnError("the user information holds an unencoded '@': write it as %40")
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        _check_ports(port.rpartition(":")[2] if ":" in port else "")
    options: dict[str, str] = {}
    for pair in parts.query.split("&") if parts.query else ():
        key, eq, value = pair.partition("=")
        if not eq or not key:
            # Not quoted: it may be the tail of a password that held a '?'.
            raise DsnError(
                "the query holds an item that is not key=value (a '?', '&' or '#' "
                "in the password? percent-encode it)"
            )
        if value:  # empty means unset, to the driver
            options[urllib.parse.unquote_plus(key)] = urllib.parse.unquote_plus(value)
    return options


def _keyword_options(dsn: str) -> dict[str, str]:
    try:
        spans = _keyword_spans(dsn)
    except _Unparsable:
        raise DsnError(
            "not a URI (postgresql://…) and not libpq key=value pairs: a word without "
            "'=', or a quote that does not end"
        ) from None
    options: dict[str, str] = {}
    for key, start, end in spans:
        if not _KEY.fullmatch(key):
            raise DsnError(f"{key[:40]!r} is not a libpq keyword")
        raw = dsn[start:end]
        value = re.sub(r"\\(.)", r"\1", raw[1:-1] if raw.startswith("'") else raw, flags=re.DOTALL)
        if value:  # empty means unset, to libpq and the driver
            options[key] = value
    return options


def _check_ports(ports: str) -> None:
    for port in ports.split(","):
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65_536):
            raise DsnError(f"port {port[:20]!r} is not a port number")


def check_dsn(dsn: str) -> None:
    """Refuse at load what the driver would refuse at connect (or misread), naming the
    part that is wrong: the syntax, sslmode, ports, target_session_attrs, TLS versions."""
    options = dsn_options(dsn)
    mode = options.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise DsnError(f"sslmode={mode[:40]!r} is not one of {', '.join(SSL_MODES)}")
    _check_ports(options.get("port", ""))
    attrs = options.get("target_session_attrs")
    if attrs is not None and attrs not in _TARGET_SESSION_ATTRS:
        raise DsnError(
            f"target_session_attrs={attrs[:40]!r} is not one of {', '.join(_TARGET_SESSION_ATTRS)}"
        )
    for key in ("ssl_min_protocol_version", "ssl_max_protocol_version"):
        if options.get(key, _TLS_VERSIONS[0]) not in _TLS_VERSIONS:
            raise DsnError(f"{key} is not one of {', '.join(_TLS_VERSIONS)}")
    if options.get("sslrootcert") == "system" and mode not in (None, "verify-full"):
        # libpq's rule: anyone can get a certificate from a public CA for a host they
        # control, so the system's CAs prove nothing without the host name check.
        raise DsnError(
            f"sslrootcert=system needs sslmode=verify-full (its default), not sslmode={mode}: "
            "any host can get a certificate from a public CA"
        )


def as_uri(dsn: str) -> str:
    """The DSN in the URI form asyncpg reads: a URI as it is, a keyword/value string
    as ``postgresql://?key=value&…`` (asyncpg reads no other form)."""
    if _URI.match(dsn):
        return dsn
    return "postgresql://?" + urllib.parse.urlencode(_keyword_options(dsn)) if dsn else dsn

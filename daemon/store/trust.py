"""``sslrootcert=system`` (docs/spec.md#running-e911d): the TLS context asyncpg cannot build.

libpq reads ``system`` as "the trusted roots of the TLS library"; asyncpg reads it as
a file name, fails with FileNotFoundError, and that looks like a PostgreSQL not yet
listening, so the start-up would retry it for minutes. The context is built here
instead, the way libpq does it: the default trust store (OpenSSL's, so
``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` move it, as for every other OpenSSL client),
host names checked (``verify-full``, the only mode libpq allows with ``system``), and
the DSN's other TLS parameters applied, since asyncpg ignores them when handed a
context.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

SYSTEM = "system"

_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def uses_system_roots(options: Mapping[str, str]) -> bool:
    return options.get("sslrootcert") == SYSTEM


def system_context(options: Mapping[str, str]) -> ssl.SSLContext:
    """The context for a DSN with ``sslrootcert=system`` (its libpq ``options``).

    Raises ``OSError`` (``ssl.SSLError`` included) when a file the DSN names cannot be
    used: the caller reports it as the DSN's fault, for good.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    # asyncpg's own floor when it builds the context; the DSN may say otherwise.
    context.minimum_version = _TLS_VERSIONS[options.get("ssl_min_protocol_version", "TLSv1.2")]
    if "ssl_max_protocol_version" in options:
        context.maximum_version = _TLS_VERSIONS[options["ssl_max_protocol_version"]]
    crl = options.get("sslcrl")
    if crl:
        context.load_verify_locations(cafile=crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    cert = options.get("sslcert")
    if cert:
        password = options.get("sslpassword", "")
        context.load_cert_chain(cert, keyfile=options.get("sslkey"), password=lambda: password)
    if ssl.HAS_ALPN:
        context.set_alpn_protocols(["postgresql"])  # as asyncpg does (direct TLS needs it)
    return context

"""TLS for real: the daemon against a TLS Kafka endpoint and a PostgreSQL server with
``ssl=on``, both with certificates from a CA the fixture creates.

PostgreSQL is the distribution's server (:mod:`tests.tls_postgres`), TLS-only on TCP.
Kafka is Tansu behind :class:`tests.tls_proxy.TlsProxy` (Tansu 0.6 accepts ``--cert``
but still serves plaintext): the handshake, the certificates, the hostname check and
the client certificate are all real; only where TLS ends differs from production. The
broker advertises the proxy's address, so every connection the clients open after
bootstrap goes through TLS too.

A broken trust setting must end the start at once with the setting named: these
tests also bound how long the failure takes, since the start-up retry would
otherwise wait for minutes on what looks like an unreachable broker or database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from e911d.config import Settings
from e911d.daemon.kafka.clients import kafka_options, probe_broker
from e911d.daemon.runtime.app import App
from e911d.daemon.store.db import PoolConfig, open_pool
from tests.ports import held_port, start_broker
from tests.support import Topics, login, wait_consumed
from tests.tls_certs import Authority, Issued
from tests.tls_postgres import CERT_ROLE, TlsPostgres
from tests.tls_proxy import TlsProxy, server_context, tcp_opener

KEY_PASSWORD = "k3y pass"  # noqa: S105  a test key's password
FAIL_FAST_SECONDS = 10.0  # the start-up retry would take about two minutes


@dataclass(frozen=True)
class Pki:
    ca: Authority
    wrong_ca: Authority
    server: Issued  # 127.0.0.1 and localhost
    elsewhere: Issued  # another host's certificate, same CA
    postgres: Issued  # "localhost" only: connecting to 127.0.0.1 is a name mismatch
    postgres_client: Issued  # CN = CERT_ROLE
    client: Issued  # client certificate, key encrypted with KEY_PASSWORD


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = Authority.create(d, "ca")
    return Pki(
        ca=ca,
        wrong_ca=Authority.create(d, "wrong-ca"),
        server=ca.issue(d, "server", ["127.0.0.1", "localhost"]),
        elsewhere=ca.issue(d, "elsewhere", ["service.example.com"]),
        postgres=ca.issue(d, "postgres", ["localhost"], traditional_key=True),
        postgres_client=ca.issue(d, "postgres-client", [CERT_ROLE], client=True),
        client=ca.issue(d, "client", ["e911d"], client=True, key_password=KEY_PASSWORD),
    )


@dataclass(frozen=True)
class KafkaTls:
    bootstrap: str  # the TLS endpoint, client certificate required
    mismatch: str  # a TLS endpoint whose certificate names another host


@pytest.fixture(scope="module")
def kafka_tls(pki: Pki) -> Iterator[KafkaTls]:
    with held_port() as port:  # held until the proxy listens on it
        broker = start_broker(advertised=f"127.0.0.1:{port}")
        mutual = server_context(pki.server.cert, pki.server.key)
        mutual.verify_mode = ssl.CERT_REQUIRED
        mutual.load_verify_locations(pki.ca.cert_file)
        upstream = tcp_opener("127.0.0.1", broker.port)
        good = TlsProxy(mutual, upstream, port=port).start()
    other = TlsProxy(server_context(pki.elsewhere.cert, pki.elsewhere.key), upstream).start()
    yield KafkaTls(f"127.0.0.1:{good.port}", f"127.0.0.1:{other.port}")
    good.stop()
    other.stop()
    broker.stop()


@pytest.fixture(scope="module")
def postgres_tls(pki: Pki) -> Iterator[TlsPostgres]:
    server = TlsPostgres(pki.postgres, pki.ca.cert_file).start()
    yield server
    server.stop()


@pytest.fixture
async def tls_database(postgres_tls: TlsPostgres) -> AsyncIterator[str]:
    """A fresh database on the TLS server: its name."""
    name = f"e911_tls_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_tls.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        with contextlib.suppress(asyncpg.DuplicateObjectError):
            await admin.execute(f"CREATE ROLE {CERT_ROLE} LOGIN")
    finally:
        await admin.close()
    yield name
    admin = await asyncpg.connect(postgres_tls.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def tls_kafka(pki: Pki, bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": str(pki.ca.cert_file),
        "ssl_certfile": str(pki.client.cert),
        "ssl_keyfile": str(pki.client.key),
        "ssl_key_password": KEY_PASSWORD,
        **extra,
    }


async def start_fails(settings: Settings) -> str:
    """Run the daemon expecting a failed start: the error it logged."""
    began = time.monotonic()
    with capture_logs() as logs:
        code = await asyncio.wait_for(App(settings).run(), FAIL_FAST_SECONDS * 2)
    took = time.monotonic() - began
    assert code == 1
    assert took < FAIL_FAST_SECONDS, f"start-up failure took {took:.1f}s: it was retried"
    failed = [e for e in logs if e["event"] == "startup_failed"]
    assert len(failed) == 1, logs
    assert not any(e["event"] == "retrying" for e in logs), "a misconfiguration was retried"
    return str(failed[0]["error"])


async def test_daemon_runs_over_tls_to_kafka_and_postgres(
    pki: Pki,
    kafka_tls: KafkaTls,
    postgres_tls: TlsPostgres,
    tls_database: str,
    make_settings: Callable[..., Settings],
    start_app: Any,
) -> None:
    """verify-full to PostgreSQL, a client certificate with an encrypted key to Kafka:
    migrations run, the topics are created, a login arrives and is stored."""
    query = f"sslmode=verify-full&sslrootcert={pki.ca.cert_file}"
    dsn = postgres_tls.dsn(tls_database, "localhost", query)
    topics = Topics.unique()
    settings = make_settings(
        kafka=tls_kafka(pki, kafka_tls.bootstrap, topics=topics.as_settings()),
        postgres={"dsn": dsn},
    )
    running = await start_app(settings)
    producer = AIOKafkaProducer(**kafka_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.session_events, login("a", "u1", "s-tls", "203.0.113.5"), key=b"u1"
        )
    finally:
        await producer.stop()
    await wait_consumed(running.app, topics.session_events, "e911.session.login", 1)
    conn = await asyncpg.connect(dsn)
    try:
        ip = await conn.fetchval("SELECT host(ip) FROM sessions WHERE session_id = 's-tls'")
        tls = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        daemon_tls = await conn.fetchval(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            " WHERE a.datname = current_database() AND a.backend_type = 'client backend'"
        )
    finally:
        await conn.close()
    assert ip == "203.0.113.5"
    assert tls is True
    assert daemon_tls is True  # the daemon's pool and LISTEN connections too
    # The server takes nothing but TLS, so the daemon cannot have gone around it.
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(postgres_tls.dsn(tls_database, "localhost", "sslmode=disable"))
    assert await running.stop() == 0


async def test_kafka_wrong_ca_fails_at_start_naming_the_setting(
    pki: Pki, kafka_tls: KafkaTls, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        kafka=tls_kafka(pki, kafka_tls.bootstrap, ssl_cafile=str(pki.wrong_ca.cert_file))
    )
    error = await start_fails(settings)
    assert "kafka TLS handshake" in error
    assert "certificate verify failed" in error
    assert "E911_KAFKA__SSL_CAFILE" in error


async def test_kafka_hostname_mismatch_fails_unless_the_check_is_off(
    pki: Pki, kafka_tls: KafkaTls, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kafka=tls_kafka(pki, kafka_tls.mismatch))
    error = await start_fails(settings)
    assert "127.0.0.1" in error  # what the certificate is not valid for
    assert "E911_KAFKA__SSL_CHECK_HOSTNAME" in error
    # The same endpoint is trusted once the name check is off (the CA still is not).
    lenient = make_settings(kafka=tls_kafka(pki, kafka_tls.mismatch, ssl_check_hostname=False))
    await probe_broker(lenient, asyncio.Event())
    assert kafka_options(lenient)["ssl_context"].verify_mode == ssl.CERT_REQUIRED


async def test_sasl_ssl_refused_mechanism_fails_at_start_naming_the_settings(
    pki: Pki, kafka_tls: KafkaTls, make_settings: Callable[..., Settings]
) -> None:
    """SASL_SSL for real as far as this broker goes: the TLS handshake succeeds, then
    the broker (no SASL configured) refuses the mechanism."""
    settings = make_settings(
        kafka=tls_kafka(
            pki,
            kafka_tls.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="e911d",
            sasl_password="not-it",  # noqa: S106  a test secret
        )
    )
    error = await start_fails(settings)
    assert "kafka SASL authentication" in error
    assert "UnsupportedSaslMechanismError" in error
    assert "E911_KAFKA__SASL_MECHANISM" in error
    assert "not-it" not in error


async def test_sasl_unknown_user_fails_at_start_naming_the_settings(
    make_settings: Callable[..., Settings],
) -> None:
    """A broker that requires authentication and knows no such user."""
    broker = await asyncio.to_thread(start_broker, options=("--authentication",))
    try:
        settings = make_settings(
            kafka={
                "bootstrap_servers": broker.bootstrap_servers,
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": "nobody",
                "sasl_password": "pw",
            }
        )
        error = await start_fails(settings)
    finally:
        await asyncio.to_thread(broker.stop)
    assert "kafka SASL authentication" in error
    assert "'nobody'" in error
    assert "E911_KAFKA__SASL_PASSWORD" in error


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"ssl_keyfile": "/nonexistent/client.key"}, "E911_KAFKA__SSL_KEYFILE: no such file"),
        ({"ssl_cafile": "/nonexistent/ca.pem"}, "E911_KAFKA__SSL_CAFILE: no such file"),
        ({"ssl_key_password": "wrong"}, "E911_KAFKA__SSL_KEY_PASSWORD"),
        ({"ssl_key_password": None}, "E911_KAFKA__SSL_KEY_PASSWORD"),
    ],
)
async def test_kafka_unusable_client_files_fail_at_start(
    pki: Pki,
    kafka_tls: KafkaTls,
    make_settings: Callable[..., Settings],
    change: dict[str, Any],
    named: str,
) -> None:
    settings = make_settings(kafka=tls_kafka(pki, kafka_tls.bootstrap, **change))
    assert named in await start_fails(settings)


async def test_postgres_client_certificate_from_the_dsn(
    pki: Pki, postgres_tls: TlsPostgres, tls_database: str
) -> None:
    """sslcert and sslkey reach the server: a role that may log in only with a
    certificate gets in with one, through the daemon's own pool."""
    query = f"sslmode=verify-full&sslrootcert={pki.ca.cert_file}"
    with_cert = f"{query}&sslcert={pki.postgres_client.cert}&sslkey={pki.postgres_client.key}"
    dsn = postgres_tls.dsn(tls_database, "localhost", with_cert, user=CERT_ROLE)
    async with open_pool(PoolConfig(dsn, 1, 1)) as pool:
        assert await pool.fetchval("SELECT current_user") == CERT_ROLE
    without = postgres_tls.dsn(tls_database, "localhost", query, user=CERT_ROLE)
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="certificate"):
        await asyncpg.connect(without)


async def test_postgres_wrong_ca_fails_at_start_naming_the_dsn(
    pki: Pki, postgres_tls: TlsPostgres, tls_database: str, make_settings: Callable[..., Settings]
) -> None:
    query = f"sslmode=verify-full&sslrootcert={pki.wrong_ca.cert_file}"
    dsn = postgres_tls.dsn(tls_database, "localhost", query)
    error = await start_fails(make_settings(postgres={"dsn": dsn}))
    assert "PostgreSQL TLS handshake failed" in error
    assert "certificate verify failed" in error
    assert "sslrootcert" in error
    assert "E911_POSTGRES__DSN" in error


async def test_postgres_hostname_mismatch_fails_at_start(
    pki: Pki, postgres_tls: TlsPostgres, tls_database: str, make_settings: Callable[..., Settings]
) -> None:
    query = f"sslmode=verify-full&sslrootcert={pki.ca.cert_file}"
    dsn = postgres_tls.dsn(tls_database, "127.0.0.1", query)  # the certificate says localhost
    error = await start_fails(make_settings(postgres={"dsn": dsn}))
    assert "not valid for '127.0.0.1'" in error
    assert "E911_POSTGRES__DSN" in error


async def test_postgres_missing_root_certificate_fails_at_start(
    postgres_tls: TlsPostgres, tls_database: str, make_settings: Callable[..., Settings]
) -> None:
    query = "sslmode=verify-full&sslrootcert=/nonexistent/root.pem"
    dsn = postgres_tls.dsn(tls_database, "localhost", query)
    error = await start_fails(make_settings(postgres={"dsn": dsn}))
    assert "E911_POSTGRES__DSN: sslrootcert file not found: /nonexistent/root.pem" in error


async def _tls_backends(dsn: str) -> list[bool]:
    """Whether each of the daemon's connections to this database is TLS."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            " WHERE a.datname = current_database() AND a.backend_type = 'client backend'"
            " AND s.pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [r["ssl"] for r in rows]


# With sslrootcert=system, libpq's sslmode defaults to verify-full (asyncpg's own
# default, prefer, would not verify anything).
SYSTEM_ROOTS = ["sslrootcert=system", "sslmode=verify-full&sslrootcert=system"]


@pytest.mark.parametrize("query", SYSTEM_ROOTS, ids=["default-mode", "verify-full"])
async def test_postgres_system_trust_store(
    pki: Pki,
    postgres_tls: TlsPostgres,
    tls_database: str,
    make_settings: Callable[..., Settings],
    start_app: Any,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
) -> None:
    """sslrootcert=system: the test CA installed the way OpenSSL's clients find the
    system's CAs (SSL_CERT_FILE), and no CA file in the DSN. The pool and the LISTEN
    connection both verify the server (asyncpg alone read "system" as a file name and
    retried a FileNotFoundError for minutes)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca.cert_file))
    dsn = postgres_tls.dsn(tls_database, "localhost", query)
    running = await start_app(make_settings(postgres={"dsn": dsn}))
    await running.app.listener.connected.wait()
    check = f"sslmode=verify-full&sslrootcert={pki.ca.cert_file}"
    tls = await _tls_backends(postgres_tls.dsn(tls_database, "localhost", check))
    assert len(tls) >= 2 and all(tls)  # the pool's and the listener's
    assert await running.stop() == 0


@pytest.mark.parametrize(
    ("host", "trusted", "expected"),
    [
        ("localhost", "wrong_ca", "certificate verify failed"),
        ("127.0.0.1", "ca", "not valid for '127.0.0.1'"),  # the certificate says localhost
    ],
    ids=["another-ca", "host-name"],
)
@pytest.mark.parametrize("query", SYSTEM_ROOTS, ids=["default-mode", "verify-full"])
async def test_postgres_system_trust_store_refusals_fail_at_start(
    pki: Pki,
    postgres_tls: TlsPostgres,
    tls_database: str,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    trusted: str,
    expected: str,
    query: str,
) -> None:
    """The system's CAs are checked, host name included (verify-full, as libpq does for
    system); a refusal ends the start at once, naming the DSN, instead of being retried."""
    authority: Authority = getattr(pki, trusted)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.cert_file))
    dsn = postgres_tls.dsn(tls_database, host, query)
    error = await start_fails(make_settings(postgres={"dsn": dsn}))
    assert expected in error
    assert "E911_POSTGRES__DSN" in error


async def test_postgres_unusable_dsn_files_fail_at_start(
    postgres_tls: TlsPostgres,
    tls_database: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """A root certificate file that holds no certificate: asyncpg's ssl.SSLError is an
    OSError, and was retried as if the server were away."""
    junk = tmp_path / "root.pem"
    junk.write_text("not a certificate\n")
    dsn = postgres_tls.dsn(tls_database, "localhost", f"sslmode=verify-full&sslrootcert={junk}")
    error = await start_fails(make_settings(postgres={"dsn": dsn}))
    assert "E911_POSTGRES__DSN: a certificate or key file it names cannot be used" in error


def test_e911d_run_reports_a_wrong_ca_without_a_traceback(
    pki: Pki, kafka_tls: KafkaTls, database: str, tmp_path: Path
) -> None:
    """What an operator sees: exit status 1 and one line naming the setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env.update(
        {
            "E911_KAFKA__BOOTSTRAP_SERVERS": kafka_tls.bootstrap,
            "E911_KAFKA__SECURITY_PROTOCOL": "SSL",
            "E911_KAFKA__SSL_CAFILE": str(pki.wrong_ca.cert_file),
            "E911_KAFKA__CREATE_TOPICS": "false",
            "E911_POSTGRES__DSN": database,
            "E911_HTTP__HOST": "127.0.0.1",
            "E911_HTTP__PORT": "0",
            "E911_LOG__FORMAT": "json",
        }
    )
    e911d = str(Path(sys.executable).with_name("e911d"))
    done = subprocess.run(
        [e911d, "run"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "E911_KAFKA__SSL_CAFILE" in done.stderr
    assert "certificate verify failed" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout

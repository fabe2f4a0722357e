"""Kafka clients as components: options from settings (TLS and SASL included),
started with the retry policy, always closed.

A producer that was created but never stopped warns "Unclosed AIOKafkaProducer" and
keeps its sockets: a Ctrl-C during start-up used to leave exactly that. Here the
client is closed on every way out of its block, including a cancelled start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer, errors
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError

from e911d.config import KafkaSettings, Settings
from e911d.consumers.batch_size import BatchSizing
from e911d.consumers.closing import close_within, drop_producer
from e911d.consumers.loop import ConsumerConfig, join_hold_seconds
from e911d.consumers.topics import TopicsReport, ensure_topics
from e911d.daemon.core.retry import STARTUP, retry

log = structlog.get_logger(__name__)


class KafkaSetupError(Exception):
    """The Kafka security settings cannot work; the message names the setting.

    Never retried: a wrong CA or key file does not fix itself while we wait.
    """


def _readable(setting: str, path: Path) -> None:
    env = f"E911_KAFKA__{setting.upper()}"
    if not path.is_file():
        raise KafkaSetupError(f"{env}: no such file: {path}")
    if not os.access(path, os.R_OK):
        raise KafkaSetupError(f"{env}: cannot read {path} (permissions)")


def tls_context(k: KafkaSettings) -> ssl.SSLContext | None:
    """The context for SSL and SASL_SSL (None for the plaintext protocols).

    Verification is always on; ``ssl_check_hostname`` only drops the name check,
    for brokers reached through an address their certificate does not list.
    """
    if not k.security_protocol.endswith("SSL"):
        return None
    for setting in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(k, setting)
        if path is not None:
            _readable(setting, path)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = k.ssl_check_hostname
    if k.ssl_cafile is not None:
        try:
            ctx.load_verify_locations(cafile=k.ssl_cafile)
        except ssl.SSLError as exc:
            raise KafkaSetupError(
                f"E911_KAFKA__SSL_CAFILE: {k.ssl_cafile} holds no PEM certificate: {exc.reason}"
            ) from exc
    if k.ssl_certfile is not None:
        password = k.ssl_key_password.get_secret_value() if k.ssl_key_password else None
        try:
            ctx.load_cert_chain(k.ssl_certfile, k.ssl_keyfile, password=password or "")
        except ssl.SSLError as exc:
            raise KafkaSetupError(
                "cannot load the client certificate: E911_KAFKA__SSL_CERTFILE and "
                "E911_KAFKA__SSL_KEYFILE must be a PEM certificate and its key, and "
                "E911_KAFKA__SSL_KEY_PASSWORD the key's password if it is encrypted "
                f"({exc.reason or exc})"
            ) from exc
    return ctx


def sasl_options(k: KafkaSettings) -> dict[str, Any]:
    """aiokafka's SASL arguments; it takes the SCRAM credentials under the PLAIN names."""
    if k.sasl_mechanism is None:
        return {}
    return {
        "sasl_mechanism": k.sasl_mechanism,
        "sasl_plain_username": k.sasl_username,
        "sasl_plain_password": k.sasl_password.get_secret_value() if k.sasl_password else None,
    }


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Options shared by every client; raises KafkaSetupError for unusable TLS files."""
    k = settings.kafka
    opts: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap_servers,
        "client_id": k.client_id,
        "security_protocol": k.security_protocol,
        "request_timeout_ms": k.request_timeout_ms,
        **sasl_options(k),
    }
    context = tls_context(k)
    if context is not None:
        opts["ssl_context"] = context
    return opts


# Handshake failures that waiting cannot cure: our trust or name settings, or a
# broker that is not speaking TLS on that port, or one that rejected our certificate.
_FATAL_TLS_REASONS = ("WRONG_VERSION_NUMBER", "TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_")

# The broker refused our SASL mechanism or credentials. aiokafka's SCRAM also fails
# with a KeyError or ValueError when the server's final message carries an error
# instead of its signature.
_SASL_REFUSED: tuple[type[BaseException], ...] = (
    errors.UnsupportedSaslMechanismError,
    errors.SaslAuthenticationFailed,
    errors.AuthenticationFailedError,
    errors.AuthenticationMethodNotSupported,
    errors.IllegalSaslStateError,
    KeyError,
    ValueError,
)


def _fatal_tls(exc: BaseException) -> bool:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    reason = getattr(exc, "reason", None) or ""
    return isinstance(exc, ssl.SSLError) and reason.startswith(_FATAL_TLS_REASONS)


def _setup_error(server: str, exc: BaseException, k: KafkaSettings) -> KafkaSetupError | None:
    """The message naming the settings to check, or None when waiting may help."""
    if _fatal_tls(exc):
        return KafkaSetupError(_tls_message(server, exc))
    if isinstance(exc, _SASL_REFUSED):
        return KafkaSetupError(
            f"kafka SASL authentication with {server} failed "
            f"(mechanism {k.sasl_mechanism}, user {k.sasl_username!r}): "
            f"{type(exc).__name__}: {exc}; check E911_KAFKA__SASL_MECHANISM, "
            "E911_KAFKA__SASL_USERNAME and E911_KAFKA__SASL_PASSWORD"
        )
    return None


async def probe_broker(settings: Settings, stop: asyncio.Event) -> None:
    """Connect to a bootstrap broker as the clients will (TLS handshake, SASL
    authentication) before any client starts.

    aiokafka logs a failed handshake or login and raises only "Unable to bootstrap",
    which the start-up retry would take for a broker still booting and retry for
    minutes; here a certificate or credential the broker refuses ends the start at
    once, naming the settings to check. Nothing to prove for plain PLAINTEXT.
    """
    k = settings.kafka
    if k.security_protocol == "PLAINTEXT":
        return
    options = kafka_options(settings)
    del options["bootstrap_servers"]
    servers = [_host_port(s.strip()) for s in k.bootstrap_servers.split(",") if s.strip()]

    async def connect() -> None:
        last: BaseException | None = None
        for host, port in servers:
            server = f"{host}:{port}"
            try:
                conn = await create_conn(host, port, **options)
            except Exception as exc:
                fatal = _setup_error(server, exc, k)
                if fatal is not None:
                    raise fatal from None
                last = exc
                continue
            conn.close()
            return
        raise KafkaConnectionError(f"cannot connect to {k.bootstrap_servers}: {last!r}")

    await retry("kafka_probe", connect, retry_if=_unreachable, log=log, backoff=STARTUP, stop=stop)


def _host_port(server: str) -> tuple[str, int]:
    host, colon, port = server.rpartition(":")
    if not colon or "]" in port:  # no port given ("broker", "[::1]")
        return server.strip("[]"), 9092
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise KafkaSetupError(f"E911_KAFKA__BOOTSTRAP_SERVERS: bad port in {server!r}") from None


def _tls_message(server: str, exc: BaseException) -> str:
    detail = getattr(exc, "reason", None) or str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = f"certificate verify failed: {exc.verify_message}"
        hint = "check E911_KAFKA__SSL_CAFILE and E911_KAFKA__SSL_CHECK_HOSTNAME"
    elif "WRONG_VERSION_NUMBER" in str(getattr(exc, "reason", "")):
        hint = "is the listener TLS? check E911_KAFKA__SECURITY_PROTOCOL"
    else:
        hint = "the broker refused the handshake; check E911_KAFKA__SSL_CERTFILE / SSL_KEYFILE"
    return f"kafka TLS handshake with {server} failed: {detail}; {hint}"


async def prepare_topics(settings: Settings, stop: asyncio.Event) -> TopicsReport | None:
    """Create missing topics, retried with the start-up backoff until the broker
    answers (it may come up after us); None when topic creation is turned off."""
    k = settings.kafka
    if not k.create_topics:
        return None
    t = k.topics
    options = kafka_options(settings)

    async def attempt() -> TopicsReport:
        return await ensure_topics(
            options,
            [t.session_events, t.directory_events, t.alerts, t.dead_letter],
            k.topic_partitions,
            k.replication_factor,
        )

    return await retry(
        "kafka_topics", attempt, retry_if=_unreachable, log=log, backoff=STARTUP, stop=stop
    )


def consumer_config(settings: Settings) -> ConsumerConfig:
    k = settings.kafka
    return ConsumerConfig(
        session_topic=k.topics.session_events,
        directory_topic=k.topics.directory_events,
        dead_letter_topic=k.topics.dead_letter,
        group_id=k.group_id,
        max_event_bytes=k.max_event_bytes,
        poll_max_records=k.poll_max_records,
        pipeline=k.pipeline,
        batch_sizing=BatchSizing(
            min(k.poll_min_records, k.poll_max_records), k.poll_max_records, k.batch_target_seconds
        ),
        poll_timeout_ms=k.poll_timeout_ms,
        fetch_max_bytes=k.fetch_max_bytes,
        pause_after_seconds=k.pause_after_seconds,
        max_clock_skew=dt.timedelta(seconds=settings.checks.max_clock_skew_seconds),
        join_hold_seconds=join_hold_seconds(k.session_timeout_ms, k.rebalance_timeout_ms),
        # The drain and the consumer's leave share the shutdown timeout; the other
        # clients close after it (at most ~3 s), inside the 10 s before SIGKILL.
        stop_budget_seconds=settings.shutdown_timeout_seconds,
        kafka_options={
            **kafka_options(settings),
            "session_timeout_ms": k.session_timeout_ms,
            "rebalance_timeout_ms": k.rebalance_timeout_ms,
            "heartbeat_interval_ms": k.heartbeat_interval_ms,
            # Static membership (config/instance_id.py): None joins as a dynamic member.
            # A static member sends no LeaveGroup when it closes: its partitions wait up
            # to the session timeout for it to come back.
            "group_instance_id": k.group_instance_id,
        },
    )


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaConnectionError)


def start_client(
    what: str, stop: asyncio.Event
) -> Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]:
    """A starter for a Kafka client: retried with the start-up backoff while the
    broker cannot be reached (it may be booting next to us)."""

    async def start(func: Callable[[], Awaitable[None]]) -> None:
        await retry(
            f"kafka_{what}_start", func, retry_if=_unreachable, log=log, backoff=STARTUP, stop=stop
        )

    return start


@contextlib.asynccontextmanager
async def open_producer(settings: Settings, stop: asyncio.Event) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=settings.kafka.enable_idempotence,
        max_request_size=max(1_048_576, settings.kafka.max_event_bytes * 2),
        linger_ms=5,
        **kafka_options(settings),
    )
    try:
        await start_client("producer", stop)(producer.start)
        yield producer
    finally:
        # The relay's drain has flushed the outbox: a live broker acks what is left in
        # milliseconds, and a gone one is not waited for beyond this.
        await close_within(producer.stop(), 2.0, "producer", abort=lambda: drop_producer(producer))

"""Secure connections (docs/spec.md#running-e911d) without a broker: the settings' cross-checks, the
options handed to aiokafka (SASL mechanisms, TLS context), how PostgreSQL TLS
failures are classified, and the replication factor sent for new topics.

Tansu (the test broker) supports SCRAM only with users created in a persistent
store, which its memory store is not: the SASL options are checked here as data.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from e911d.config import ConfigError, Settings, load_settings, masked_settings
from e911d.consumers.topics import BROKER_DEFAULT, _new_topic
from e911d.daemon.kafka.clients import KafkaSetupError, _host_port, kafka_options, sasl_options
from e911d.daemon.store.db import DatabaseError, check_dsn_files, connect_target, convert
from tests.tls_certs import Authority

KEY_PW = "pw"
SASL_PW = "hunter2"


def load(**env: str) -> Settings:
    return load_settings(environ={f"E911_KAFKA__{k.upper()}": v for k, v in env.items()})


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = Authority.create(d, "ca")
    client = ca.issue(d, "client", ["e911d"], client=True, key_password=KEY_PW)
    plain = ca.issue(d, "plain", ["e911d"], client=True)
    return {
        "ca": ca.cert_file,
        "cert": client.cert,
        "key": client.key,
        "plain_cert": plain.cert,
        "plain_key": plain.key,
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_each_sasl_mechanism_becomes_aiokafka_options(mechanism: str) -> None:
    s = load(
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="svc",
        sasl_password=SASL_PW,
    )
    assert sasl_options(s.kafka) == {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc",
        "sasl_plain_password": SASL_PW,
    }
    opts = kafka_options(s)
    assert opts["security_protocol"] == "SASL_SSL"
    assert isinstance(opts["ssl_context"], ssl.SSLContext)  # SASL_SSL is TLS too


async def test_sasl_ssl_no_longer_fails_for_want_of_an_ssl_context() -> None:
    """The reported defect: aiokafka's "ssl_context is mandatory" at start."""
    from aiokafka import AIOKafkaProducer

    s = load(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="svc",
        sasl_password=SASL_PW,
    )
    producer = AIOKafkaProducer(**kafka_options(s))  # raised ValueError before
    await producer.stop()  # never started: nothing to connect to


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"security_protocol": "SASL_SSL"}, "E911_KAFKA__SASL_MECHANISM"),
        ({"security_protocol": "SASL_PLAINTEXT"}, "E911_KAFKA__SASL_MECHANISM"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"},
            "E911_KAFKA__SASL_USERNAME and E911_KAFKA__SASL_PASSWORD",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "E911_KAFKA__SASL_PASSWORD",
        ),
        ({"security_protocol": "SSL", "sasl_mechanism": "PLAIN"}, "use SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "E911_KAFKA__SSL_CERTFILE"),
        ({"security_protocol": "SSL", "ssl_key_password": "x"}, "E911_KAFKA__SSL_CERTFILE"),
    ],
)
def test_inconsistent_security_settings_are_refused_at_load(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load(**env)


def test_tls_context_verifies_and_checks_hostnames_by_default(pki: dict[str, Path]) -> None:
    s = load(security_protocol="SSL", ssl_cafile=str(pki["ca"]))
    assert s.kafka.ssl_check_hostname is True
    ctx = kafka_options(s)["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    off = kafka_options(load(security_protocol="SSL", ssl_check_hostname="false"))
    assert off["ssl_context"].check_hostname is False
    assert off["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_plaintext_gets_no_tls_context() -> None:
    assert "ssl_context" not in kafka_options(load())


def test_client_certificate_with_encrypted_key(pki: dict[str, Path]) -> None:
    env = {
        "security_protocol": "SSL",
        "ssl_cafile": str(pki["ca"]),
        "ssl_certfile": str(pki["cert"]),
        "ssl_keyfile": str(pki["key"]),
    }
    assert kafka_options(load(**env, ssl_key_password=KEY_PW))["ssl_context"] is not None
    with pytest.raises(KafkaSetupError, match="E911_KAFKA__SSL_KEY_PASSWORD"):
        kafka_options(load(**env, ssl_key_password=KEY_PW + "x"))
    # No password for an encrypted key: an error, not a prompt on the terminal.
    with pytest.raises(KafkaSetupError, match="E911_KAFKA__SSL_KEY_PASSWORD"):
        kafka_options(load(**env))


def test_certificate_and_key_in_one_file(pki: dict[str, Path], tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(pki["plain_cert"].read_bytes() + pki["plain_key"].read_bytes())
    assert kafka_options(load(security_protocol="SSL", ssl_certfile=str(both)))["ssl_context"]


@pytest.mark.parametrize("setting", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_missing_files_name_the_setting(setting: str, pki: dict[str, Path], tmp_path: Path) -> None:
    env: dict[str, Any] = {
        "security_protocol": "SSL",
        "ssl_cafile": str(pki["ca"]),
        "ssl_certfile": str(pki["plain_cert"]),
        "ssl_keyfile": str(pki["plain_key"]),
    }
    env[setting] = str(tmp_path / "absent.pem")
    with pytest.raises(KafkaSetupError, match=f"E911_KAFKA__{setting.upper()}: no such file"):
        kafka_options(load(**env))


def test_a_ca_file_that_is_no_certificate_names_the_setting(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(KafkaSetupError, match="E911_KAFKA__SSL_CAFILE"):
        kafka_options(load(security_protocol="SSL", ssl_cafile=str(junk)))


def test_the_key_password_is_masked() -> None:
    s = load(
        security_protocol="SSL",
        ssl_certfile="/c.pem",
        ssl_keyfile="/k.pem",
        ssl_key_password=SASL_PW,
    )
    masked = masked_settings(s)
    assert masked["kafka"]["ssl_key_password"] == "***"  # noqa: S105  the mask
    assert SASL_PW not in json.dumps(masked)
    assert masked["kafka"]["ssl_keyfile"] == "/k.pem"


def test_replication_factor_defaults_to_the_brokers() -> None:
    assert load().kafka.replication_factor is None
    assert load(replication_factor="3").kafka.replication_factor == 3
    with pytest.raises(ConfigError, match="replication_factor"):
        load(replication_factor="0")
    assert _new_topic("t", 6, None).replication_factor == BROKER_DEFAULT == -1
    assert _new_topic("t", 6, 3).replication_factor == 3


def test_postgres_certificate_failures_are_permanent_and_name_the_dsn() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "unable to get local issuer certificate"
    err = convert(exc, "database_connect")
    assert err.transient is False
    assert "unable to get local issuer certificate" in str(err)
    assert "sslrootcert" in str(err)
    assert "E911_POSTGRES__DSN" in str(err)
    # A plain network error stays transient: PostgreSQL may be restarting.
    assert convert(ConnectionRefusedError(111, "refused")).transient is True


def test_postgres_client_configuration_errors_are_permanent() -> None:
    err = convert(asyncpg.exceptions.ClientConfigurationError("root.crt does not exist"))
    assert err.transient is False
    assert "E911_POSTGRES__DSN: root.crt does not exist" in str(err)


def test_sslrootcert_system_gets_the_default_trust_store_and_verify_full(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))  # how OpenSSL's clients are pointed
    dsn = "host=db dbname=x sslrootcert=system"
    target = connect_target(dsn)
    assert target.dsn == "postgresql://?host=db&dbname=x&sslrootcert=system"
    assert target.ssl is not None
    assert target.ssl.check_hostname is True
    assert target.ssl.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in target.ssl.get_ca_certs()] == [((("commonName", "ca"),),)]
    assert target.options() == {"ssl": target.ssl}
    assert connect_target("postgresql://u@db/x?sslmode=require").options() == {}


def test_sslrootcert_system_with_a_client_certificate(pki: dict[str, Path]) -> None:
    dsn = f"postgresql://u@db/x?sslrootcert=system&sslcert={pki['cert']}&sslkey={pki['key']}"
    assert connect_target(f"{dsn}&sslpassword={KEY_PW}").ssl is not None
    with pytest.raises(DatabaseError, match="E911_POSTGRES__DSN") as caught:
        connect_target(f"{dsn}&sslpassword=wrong")
    assert caught.value.transient is False


def test_postgres_dsn_files_that_hold_no_certificate_are_refused_for_good(tmp_path: Path) -> None:
    junk = tmp_path / "root.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(DatabaseError, match="E911_POSTGRES__DSN: a certificate or key") as caught:
        check_dsn_files(f"postgresql://u@db/x?sslmode=verify-full&sslrootcert={junk}")
    assert caught.value.transient is False


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        "host=db dbname=x sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
        "postgresql://u@db/x?sslmode=verify-full&sslrootcert=%2Fnonexistent%2Fca.pem",
    ],
)
def test_postgres_certificate_files_in_the_dsn_must_exist(dsn: str) -> None:
    with pytest.raises(DatabaseError, match=r"sslrootcert file not found: /nonexistent/ca\.pem"):
        check_dsn_files(dsn)


def test_postgres_dsn_files_that_exist_pass(pki: dict[str, Path]) -> None:
    check_dsn_files(f"postgresql://u@db/x?sslmode=verify-full&sslrootcert={pki['ca']}")
    check_dsn_files("postgresql://u@db/x?sslmode=verify-full&sslrootcert=system")
    check_dsn_files("postgresql://u@db/x")


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("kafka-1:9093", ("kafka-1", 9093)),
        ("kafka-1", ("kafka-1", 9092)),
        ("[::1]:9094", ("::1", 9094)),
        ("[::1]", ("::1", 9092)),
    ],
)
def test_bootstrap_servers_are_split_into_host_and_port(
    server: str, expected: tuple[str, int]
) -> None:
    assert _host_port(server) == expected


def test_a_bad_bootstrap_port_names_the_setting() -> None:
    with pytest.raises(KafkaSetupError, match="E911_KAFKA__BOOTSTRAP_SERVERS"):
        _host_port("kafka-1:x")

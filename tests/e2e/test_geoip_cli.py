"""`e911d run` with an unusable GeoIP database: exit 1 with one line naming the
setting, before anything connects, and no traceback (docs/spec.md#geolocation-check)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def env_with(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    # Nothing listens there: the start must fail on the file, not on a connection.
    env.update(
        {
            "E911_GEOIP__DATABASE": str(database),
            "E911_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "E911_POSTGRES__DSN": "postgresql://nobody@127.0.0.1:1/none",
            "E911_HTTP__PORT": "0",
            "E911_LOG__FORMAT": "json",
        }
    )
    return env


@pytest.mark.parametrize("content", [None, b"PK\x03\x04 not a database"])
async def test_run_refuses_an_unusable_geoip_database(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    if content is not None:
        path.write_bytes(content)
    code, out, err = await run_cli("run", env=env_with(path))
    assert code == 1, err
    lines = [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]
    failed = [e for e in lines if e["event"] == "startup_failed"]
    assert len(failed) == 1, out + err
    assert failed[0]["error"].startswith("E911_GEOIP__DATABASE: ")
    assert str(path) in failed[0]["error"]
    assert "Traceback" not in out + err

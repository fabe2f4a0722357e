"""The daemon under a PostgreSQL role that owns nothing and may not change the schema
(deploy/README.md, least privilege), set up with exactly the grants deploy/README.md gives."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg
import pytest

from e911d.daemon.store.db import DatabaseError, migrate, prepare_schema
from tests.support import Producer, TopicWatcher, directory, eventually, login

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
PASSWORD = "change-me"  # noqa: S105  the README's placeholder; the test cluster trusts


def sql_block(marker: str, names: dict[str, str]) -> list[str]:
    """The statements of the README's ```sql block that starts with ``-- marker``."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text("utf-8"), re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(f"-- {marker}\n")]
    for placeholder, name in names.items():
        block = re.sub(rf"\b{placeholder}\b", name, block)
    text = "\n".join(line.split("--")[0] for line in block.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def as_role(dsn: str, role: str) -> str:
    scheme, rest = dsn.split("://", 1)
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        rest = rest[rest.index("@") + 1 :]
    return f"{scheme}://{role}:{PASSWORD}@{rest}"


async def test_the_daemon_runs_under_a_role_without_ddl_rights(
    broker, topics, empty_database, make_settings, start_app
):
    prefix = f"e911_{uuid.uuid4().hex[:8]}"
    owner, app = f"{prefix}_owner", f"{prefix}_app"
    dbname = empty_database.split("?")[0].rsplit("/", 1)[1]
    names = {"e911d_owner": owner, "e911d_app": app, "DATABASE e911d": f'DATABASE "{dbname}"'}
    admin = await asyncpg.connect(empty_database)
    try:
        for statement in sql_block("e911d least privilege: administrator", names):
            await admin.execute(statement)

        # Before migrating: the app role is told what to do, it does not half-migrate.
        app_conn = await asyncpg.connect(as_role(empty_database, app))
        try:
            with pytest.raises(DatabaseError, match="may not change the schema"):
                await prepare_schema(app_conn, apply=True)
            with pytest.raises(DatabaseError, match="migrations pending: 0001_schema"):
                await prepare_schema(app_conn, apply=False)
        finally:
            await app_conn.close()

        owner_conn = await asyncpg.connect(as_role(empty_database, owner))
        try:
            assert await migrate(owner_conn)
            for statement in sql_block("e911d least privilege: schema owner", names):
                await owner_conn.execute(statement)
        finally:
            await owner_conn.close()

        app_conn = await asyncpg.connect(as_role(empty_database, app))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app_conn.execute("CREATE TABLE e911d_probe (i integer)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app_conn.execute("CREATE TEMPORARY TABLE e911d_probe (i integer)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app_conn.execute("INSERT INTO schema_migrations VALUES ('9999_x')")
        finally:
            await app_conn.close()

        # migrate_on_start stays at its default: a current schema needs no DDL.
        running = await start_app(make_settings(postgres={"dsn": as_role(empty_database, app)}))
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, directory(), key="acme")
            await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")

            async def stored() -> bool:
                return bool(await admin.fetchval("SELECT count(*) FROM sessions"))

            await eventually(stored)
            raised = await alerts.wait_count("e911.alert.raised", 1, within=15)
            assert raised[0].data["session_id"] == "s1"
        assert await running.stop() == 0
        assert await admin.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await admin.execute(f'REASSIGN OWNED BY "{owner}", "{app}" TO CURRENT_USER')
        for role in (app, owner):  # one at a time: a default ACL names both
            await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.close()
        # Roles are cluster-wide; the database goes with the fixture.
        other = await asyncpg.connect(empty_database)
        try:
            await other.execute(f'DROP ROLE IF EXISTS "{app}"')
            await other.execute(f'DROP ROLE IF EXISTS "{owner}"')
        finally:
            await other.close()

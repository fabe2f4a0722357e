"""A partition loaded as the database packs it (one string, three byte strings)
holds exactly the partition's active sessions, with odd ids as they were saved."""

from __future__ import annotations

import datetime as dt

from e911d.daemon.core.session_fold import SessionRow
from e911d.daemon.store.db import PoolConfig, connect_pool
from e911d.daemon.store.sessions import SessionStore
from e911d.schedulers.loaded import LoadedPartition
from e911d.schedulers.schedule import CheckSchedule

ODD_IDS = ["s1", "s10", "s2", "é", "🚑", "🚑🚑", "a" * 256, "a" * 255, "Z", "ü-x", "'; --"]
AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


async def test_a_partition_loads_packed_with_odd_ids_and_only_active_sessions(database):
    pool = await connect_pool(PoolConfig(database, min_size=1, max_size=1))
    store = SessionStore()
    rows = [
        SessionRow(sid, "acme", f"u{i}", "10.0.0.1", AT + dt.timedelta(seconds=-i), AT, i % 2)
        for i, sid in enumerate(ODD_IDS)
    ]
    rows += [
        SessionRow("ended", "acme", "u", "10.0.0.1", AT, AT, 0, ended_at=AT),
        SessionRow("elsewhere", "acme", "u", "10.0.0.1", AT, AT, 7),
    ]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await store.save(conn, rows)
        async with conn.transaction(readonly=True):
            packed = [p async for p in store.active_in_partitions(conn, [0, 1, 3])]
    await pool.close()
    assert sorted(p.partition for p in packed) == [0, 1]  # partition 3 has none
    schedule = CheckSchedule(600.0, 300.0)
    for p in packed:
        part = LoadedPartition.of_packed(
            p.partition, p.ids, p.lengths, p.logged_in_at, p.due_order, AT.timestamp()
        )
        expected = sorted(
            (r.logged_in_at.timestamp(), r.session_id)
            for r in rows
            if r.partition == p.partition and r.ended_at is None
        )
        assert list(part.pending()) == [sid for _, sid in expected]  # login order
        for t, sid in expected:
            assert part.logged_in_at[part.find(sid)] == t
        schedule.add_loaded(part)
    assert len(schedule) == len(ODD_IDS)
    assert "ended" not in schedule and "elsewhere" not in schedule
    due = schedule.pop_due(AT.timestamp() + 600.0, 100)
    assert sorted(d.session_id for d in due) == sorted(ODD_IDS)

"""DBFS streaming handles and read-ahead, on a SQLite store and a local root."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from kiln.dbfs import DbfsStore, files, handles, uploads
from kiln.dbfs.readahead import Prepared, ReadAhead
from kiln.errors import ResourceAlreadyExists, ResourceDoesNotExist
from kiln.store import Database, upgrade
from kiln.store.models import DbfsHandle, User

LIMIT = 1024 * 1024


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite store with two users (ids 1 and 2)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'kiln.db'}"
    upgrade(url)
    database = Database(url)
    async with database.session() as session:
        session.add_all([User(id=1, user_name="a@x"), User(id=2, user_name="b@x")])
    yield database
    await database.dispose()


async def _add(db: Database, store: DbfsStore, user: int, handle: int, data: bytes) -> None:
    async with db.session() as session:
        await handles.add_block(
            session, store, user, handle, lambda: data, size=len(data), max_block=LIMIT
        )


async def _create(db: Database, store: DbfsStore, user: int, path: str) -> int:
    async with db.session() as session:
        return await handles.create_handle(session, store, user, path, overwrite=False)


async def _close(db: Database, store: DbfsStore, user: int, handle: int) -> None:
    async with db.session() as session:
        await handles.close_handle(session, store, user, handle)


async def test_blocks_land_in_order_and_appear_on_close(db: Database, tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    handle = await _create(db, store, 1, "/out.bin")
    blocks = [os.urandom(1000 + i) for i in range(20)]
    for block in blocks:
        await _add(db, store, 1, handle, block)
    assert store.stat("/out.bin") is None
    await _close(db, store, 1, handle)
    assert (tmp_path / "root" / "out.bin").read_bytes() == b"".join(blocks)
    async with db.session() as session:
        assert await session.scalar(select(DbfsHandle)) is None
    with pytest.raises(ResourceDoesNotExist):
        await _add(db, store, 1, handle, b"late")


async def test_only_the_creator_can_use_a_handle(db: Database, tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    handle = await _create(db, store, 1, "/mine")
    with pytest.raises(ResourceDoesNotExist):
        await _add(db, store, 2, handle, b"x")
    with pytest.raises(ResourceDoesNotExist):
        await _close(db, store, 2, handle)
    await _close(db, store, 1, handle)


async def test_a_failed_block_fails_close_and_ends_the_handle(db: Database, tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    handle = await _create(db, store, 1, "/broken")

    def boom() -> bytes:
        raise OSError("disk full")

    async with db.session() as session:
        await handles.add_block(session, store, 1, handle, boom, size=1, max_block=LIMIT)
    with pytest.raises(OSError):
        await _close(db, store, 1, handle)
    assert store.stat("/broken") is None
    assert os.listdir(store.staging_root) == []
    with pytest.raises(ResourceDoesNotExist):
        await _close(db, store, 1, handle)


async def test_close_refuses_a_file_that_appeared_meanwhile(db: Database, tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    handle = await _create(db, store, 1, "/race")
    await files.put_bytes(store, "/race", b"first", overwrite=False)
    with pytest.raises(ResourceAlreadyExists):
        await _close(db, store, 1, handle)
    assert (tmp_path / "root" / "race").read_bytes() == b"first"
    assert os.listdir(store.staging_root) == []


async def test_handles_of_an_earlier_server_process_are_refused_and_purged(
    db: Database, tmp_path: Path
) -> None:
    before = DbfsStore(str(tmp_path / "root"))
    first = await _create(db, before, 1, "/a")
    second = await _create(db, before, 1, "/b")
    await _add(db, before, 1, first, b"partial")
    await asyncio.sleep(0.01)
    for stale in before.open_handles.values():  # the old process is gone, its files with it
        if stale.pending is not None:
            await stale.pending
        if stale.file is not None:
            stale.file.close()
    after = DbfsStore(str(tmp_path / "root"))  # a restarted server: same root, same store
    with pytest.raises(ResourceDoesNotExist, match="restarted"):
        await _add(db, after, 1, first, b"more")
    with pytest.raises(ResourceDoesNotExist):
        await _add(db, after, 1, first, b"more")  # gone for good
    # Creating a handle sweeps the rest away, staging files included.
    third = await _create(db, after, 1, "/c")
    async with db.session() as session:
        assert set(await session.scalars(select(DbfsHandle.id))) == {third}
    assert len(os.listdir(after.staging_root)) == 1
    with pytest.raises(ResourceDoesNotExist):
        await _close(db, after, 1, second)


def _prepared(body: bytes) -> asyncio.Future[Prepared]:
    future: asyncio.Future[Prepared] = asyncio.get_running_loop().create_future()
    future.set_result(Prepared(1, False, body))
    return future


async def test_read_ahead_is_a_small_lru() -> None:
    cache = ReadAhead(capacity=2)
    cache.offer(("/a", 0, 1), _prepared(b"a"))
    cache.offer(("/b", 0, 1), _prepared(b"b"))
    cache.offer(("/c", 0, 1), _prepared(b"c"))
    assert cache.take(("/a", 0, 1)) is None
    taken = cache.take(("/b", 0, 1))
    assert taken is not None and (await taken).body == b"b"
    assert cache.take(("/b", 0, 1)) is None


async def test_read_block_uses_read_ahead_only_for_the_same_file(tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    await files.put_bytes(store, "/f", b"0123456789", overwrite=False)

    async def read(offset: int) -> bytes:
        return await files.read_block(
            store, "/f", offset=offset, length=4, max_length=LIMIT, encode=bytes
        )

    assert await read(0) == b"0123"
    await asyncio.sleep(0.05)  # let the next block be prepared
    assert await read(4) == b"4567"
    await asyncio.sleep(0.05)
    await files.put_bytes(store, "/f", b"abcdefghij", overwrite=True)  # replaced meanwhile
    assert await read(8) == b"ij"
    assert await read(20) == b""


async def test_idle_handles_are_purged_when_another_is_created(
    db: Database, tmp_path: Path
) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    idle = await _create(db, store, 1, "/idle")
    await _add(db, store, 1, idle, b"x")
    store.open_handles[idle].last_used -= handles.IDLE_TIMEOUT_S + 1
    fresh = await _create(db, store, 2, "/fresh")
    assert set(store.open_handles) == {fresh}
    assert len(os.listdir(store.staging_root)) == 1
    with pytest.raises(ResourceDoesNotExist):
        await _add(db, store, 1, idle, b"y")


async def test_abandoned_upload_sessions_are_purged(db: Database, tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    async with db.session() as session:
        old = await uploads.initiate_upload(session, store, 1, "/old", overwrite=True)
    async with db.session() as session:
        row = await uploads.get_upload(session, 1, "/old", old)
        row.created_at -= uploads.ABANDONED_AFTER
        staging_dir = row.staging_dir
    async with db.session() as session:
        await uploads.initiate_upload(session, store, 2, "/new", overwrite=True)
    assert staging_dir.rsplit("/", 1)[1] not in os.listdir(store.staging_root)
    async with db.session() as session:
        with pytest.raises(ResourceDoesNotExist):
            await uploads.get_upload(session, 1, "/old", old)

"""The metadata store on SQLite and on a real PostgreSQL: migrations, schema, CRUD, constraints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Table,
    bindparam,
    create_engine,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from kiln.settings import to_async_url
from kiln.store import HEAD_REVISION, Database, upgrade
from kiln.store.migrate import MIGRATIONS_DIR, sync_url
from kiln.store.models import (
    Base,
    CatalogRow,
    DbfsHandle,
    FileUpload,
    Group,
    GroupMember,
    Secret,
    SecretAcl,
    SecretScope,
    Token,
    User,
    WorkspaceObject,
    now_utc,
)
from store.postgres_cluster import find_pg_bin

TABLES = set(Base.metadata.tables)


def alembic_config(url: str) -> Config:
    """The Alembic config `upgrade` builds, for driving Alembic directly."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def table_names(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[Database]:
    """A migrated store behind kiln's own Database."""
    upgrade(store_url)
    database = Database(to_async_url(store_url))
    try:
        yield database
    finally:
        await database.dispose()


async def add(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)
    await session.flush()


async def make_user(session: AsyncSession, name: str = "ada@example.com") -> User:
    user = User(user_name=name, display_name="Ada", created_at=now_utc())
    await add(session, user)
    return user


# --- migrations -----------------------------------------------------------------------------


def test_head_revision_matches_alembic() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [HEAD_REVISION]


def test_upgrade_from_empty_to_head(store_url: str) -> None:
    assert table_names(store_url) == set()
    assert revision(store_url) is None
    upgrade(store_url)
    assert table_names(store_url) == TABLES | {"alembic_version"}
    assert revision(store_url) == HEAD_REVISION


def test_async_url_is_accepted(store_url: str) -> None:
    upgrade(to_async_url(store_url))
    assert revision(store_url) == HEAD_REVISION


def test_upgrade_twice_is_a_noop(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(store_url)
    engine = create_engine(sync_url(store_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO groups (id, display_name, created_at) VALUES (7, 'g', :t)"),
                {"t": now_utc()},
            )

        def must_not_run(*args: object, **kwargs: object) -> None:
            raise AssertionError("Alembic ran on an up-to-date store")

        # The fast path: an up-to-date store does not even reach Alembic...
        with monkeypatch.context() as patch:
            patch.setattr(command, "upgrade", must_not_run)
            upgrade(store_url)
        # ...and Alembic itself finds nothing to do.
        command.upgrade(alembic_config(store_url), "head")
        assert revision(store_url) == HEAD_REVISION
        with engine.connect() as conn:
            assert conn.execute(text("SELECT display_name FROM groups")).scalars().all() == ["g"]
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(store_url: str) -> None:
    upgrade(store_url)
    command.downgrade(alembic_config(store_url), "base")
    assert table_names(store_url) == {"alembic_version"}
    upgrade(store_url)
    assert table_names(store_url) == TABLES | {"alembic_version"}


def test_new_store_is_created_without_alembic(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("Alembic ran on an empty store")

    with monkeypatch.context() as patch:
        patch.setattr(command, "upgrade", must_not_run)
        upgrade(store_url)
    assert table_names(store_url) == TABLES | {"alembic_version"}
    assert revision(store_url) == HEAD_REVISION
    # Alembic agrees it is at head, and can take it down and up again.
    command.upgrade(alembic_config(store_url), "head")
    command.downgrade(alembic_config(store_url), "base")
    assert table_names(store_url) == {"alembic_version"}


def test_models_match_migrated_schema(store_url: str) -> None:
    # Alembic's own upgrade, not the create-at-head shortcut, so the migrations are compared.
    command.upgrade(alembic_config(store_url), "head")
    engine = create_engine(sync_url(store_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


# --- rows through kiln.store.Database -------------------------------------------------------


async def test_crud_round_trip(db: Database) -> None:
    created = now_utc()
    expires = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    async with db.session() as session:
        user = await make_user(session)
        group = Group(display_name="data-team", created_at=created)
        await add(session, group)
        scope = SecretScope(name="s", created_by=user.id, created_at=created)
        await add(
            session,
            GroupMember(group_id=group.id, member_user_id=user.id),
            Token(
                token_id="t1",
                user_id=user.id,
                secret_hash="h" * 64,
                comment="c",
                created_at=created,
                expires_at=expires,
            ),
            scope,
            WorkspaceObject(
                path="/Users/ada/nb",
                parent_path="/Users/ada",
                object_type="NOTEBOOK",
                language="PYTHON",
                content=b"\x00\xffbinary",
                size=8,
                owner_id=user.id,
            ),
        )
        await add(
            session,
            Secret(scope_id=scope.id, key="k", value_encrypted=b"\x80cipher"),
            SecretAcl(scope_id=scope.id, principal="data-team", permission="READ"),
        )
        user_id, scope_id = user.id, scope.id

    # A new session reads from the database, not from the identity map.
    async with db.session() as session:
        user = await session.get_one(User, user_id)
        assert (user.user_name, user.display_name, user.active) == ("ada@example.com", "Ada", True)
        assert user.created_at.tzinfo is not None
        token = await session.scalar(select(Token).where(Token.user_id == user_id))
        assert token is not None
        assert token.expires_at == expires
        assert token.expires_at.tzinfo is not None
        assert token.created_at == created
        # `content` is deferred: a plain select leaves it unloaded, undefer brings it.
        obj = await session.scalar(
            select(WorkspaceObject).options(undefer(WorkspaceObject.content))
        )
        assert obj is not None
        assert obj.content == b"\x00\xffbinary"
        assert obj.modified_at.tzinfo is not None
        secret = await session.scalar(select(Secret).where(Secret.scope_id == scope_id))
        assert secret is not None
        assert secret.value_encrypted == b"\x80cipher"
        assert secret.updated_at.tzinfo is not None

        user.display_name = "Ada L."
        token.expires_at = None
        await session.delete(obj)

    async with db.session() as session:
        assert (await session.get_one(User, user_id)).display_name == "Ada L."
        assert (await session.scalar(select(Token.expires_at))) is None
        assert (await session.scalar(select(WorkspaceObject))) is None


async def test_datetimes_keep_their_instant(db: Database) -> None:
    # An aware time in another zone is the same instant when read back, in whatever zone.
    india = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    async with db.session() as session:
        user = await make_user(session)
        await add(
            session,
            Token(token_id="t", user_id=user.id, secret_hash="h", created_at=india),
        )
    async with db.session() as session:
        stored = await session.scalar(select(Token.created_at))
        assert stored is not None
        assert stored.tzinfo is not None
        assert stored == india
        assert stored.astimezone(UTC) == datetime(2025, 6, 1, 6, 30, 0, 123456, tzinfo=UTC)


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.session() as session:
            await add(session, Group(display_name="g", created_at=datetime(2025, 1, 1)))


async def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.session() as session:
            await make_user(session)
            raise RuntimeError("boom")
    async with db.session() as session:
        assert (await session.scalars(select(User))).all() == []


async def test_write_stores_what_the_orm_would(db: Database) -> None:
    # Database.write bypasses the ORM (on SQLite it goes straight to sqlite3): JSON, aware
    # datetimes and NULLs must come back exactly as the ORM reads them, on every backend.
    table = cast(Table, CatalogRow.__table__)
    india = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    rows = [
        {
            "id": f"c{i}",
            "name": f"cat{i}",
            "comment": None,
            "storage_root": None,
            "properties": {"k": [i, "é"], "n": None},
            "owner": "ada",
            "created_by": "ada",
            "created_at": india,
            "updated_by": None,
            "updated_at": None,
        }
        for i in range(3)
    ]
    rename = (
        update(table)
        .where(table.c.id == bindparam("k_"))
        .values({table.c.comment: bindparam("v_comment"), table.c.updated_at: bindparam("v_at")})
    )
    for _ in range(2):  # the second round runs the statements compiled by the first
        await db.write([(insert(table), rows)])
        await db.write([(rename, {"k_": "c1", "v_comment": "one", "v_at": india})])
        async with db.session() as session:
            found = {r.id: r for r in (await session.scalars(select(CatalogRow))).all()}
            assert set(found) == {"c0", "c1", "c2"}
            assert found["c0"].properties == {"k": [0, "é"], "n": None}
            assert found["c0"].comment is None and found["c0"].updated_at is None
            assert found["c1"].comment == "one"
            assert found["c1"].updated_at == india and found["c2"].created_at == india
            assert found["c2"].created_at.tzinfo is not None
            await session.execute(delete(CatalogRow))
    # One transaction: a failing statement undoes the ones before it.
    with pytest.raises(IntegrityError):
        await db.write([(insert(table), rows[:1]), (insert(table), rows[:1])])
    async with db.session() as session:
        assert (await session.scalars(select(CatalogRow))).all() == []


async def _scope(session: AsyncSession, name: str = "s") -> SecretScope:
    scope = SecretScope(name=name)
    await add(session, scope)
    return scope


UNIQUE_CASES: dict[str, Callable[[AsyncSession, User], Any]] = {
    "users.user_name": lambda s, u: add(s, User(user_name="dup@example.com")),
    "groups.display_name": lambda s, u: add(s, Group(display_name="dup")),
    "tokens.token_id": lambda s, u: add(s, Token(token_id="dup", user_id=u.id, secret_hash="x")),
    "secret_scopes.name": lambda s, u: add(s, SecretScope(name="dup")),
    "workspace_objects.path": lambda s, u: add(
        s, WorkspaceObject(path="/dup", parent_path="/", object_type="DIRECTORY")
    ),
    "file_uploads.session_token": lambda s, u: add(
        s,
        FileUpload(session_token="dup", path="/p", staging_dir="/tmp/x", user_id=u.id),
    ),
}


@pytest.mark.parametrize("case", sorted(UNIQUE_CASES))
async def test_unique_constraints_raise(db: Database, case: str) -> None:
    async with db.session() as session:
        user = await make_user(session)
        await UNIQUE_CASES[case](session, user)
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await UNIQUE_CASES[case](session, user)


async def test_composite_unique_constraints_raise(db: Database) -> None:
    async with db.session() as session:
        scope = await _scope(session)
        await add(
            session,
            Secret(scope_id=scope.id, key="k", value_encrypted=b"1"),
            SecretAcl(scope_id=scope.id, principal="users", permission="READ"),
        )
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await add(session, Secret(scope_id=scope.id, key="k", value_encrypted=b"2"))
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await add(session, SecretAcl(scope_id=scope.id, principal="users", permission="WRITE"))
    async with db.session() as session:
        # The same key in another scope is a different secret.
        other = await _scope(session, "other")
        await add(session, Secret(scope_id=other.id, key="k", value_encrypted=b"3"))


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await add(session, Token(token_id="orphan", user_id=123, secret_hash="x"))


async def test_deleting_a_user_cascades(db: Database) -> None:
    async with db.session() as session:
        user = await make_user(session)
        keep = await make_user(session, "keep@example.com")
        group = Group(display_name="g")
        await add(session, group)
        await add(
            session,
            Token(token_id="t1", user_id=user.id, secret_hash="x"),
            Token(token_id="t2", user_id=user.id, secret_hash="x"),
            Token(token_id="t3", user_id=keep.id, secret_hash="x"),
            GroupMember(group_id=group.id, member_user_id=user.id),
            DbfsHandle(path="/a", staging_path="/tmp/a", user_id=user.id),
            FileUpload(session_token="u", path="/b", staging_dir="/tmp/b", user_id=user.id),
            SecretScope(name="made-by-ada", created_by=user.id),
            WorkspaceObject(path="/x", parent_path="/", object_type="FILE", owner_id=user.id),
        )
        user_id = user.id
    async with db.session() as session:
        await session.delete(await session.get_one(User, user_id))
    async with db.session() as session:
        assert (await session.scalars(select(Token.token_id))).all() == ["t3"]
        assert (await session.scalars(select(GroupMember))).all() == []
        assert (await session.scalars(select(DbfsHandle))).all() == []
        assert (await session.scalars(select(FileUpload))).all() == []
        # What the user made outlives them, with no owner.
        assert (await session.scalar(select(SecretScope.created_by))) is None
        assert (await session.scalar(select(WorkspaceObject.owner_id))) is None
        assert (await session.scalars(select(Group.display_name))).all() == ["g"]


async def test_deleting_a_scope_cascades(db: Database) -> None:
    async with db.session() as session:
        scope = await _scope(session)
        other = await _scope(session, "other")
        await add(
            session,
            Secret(scope_id=scope.id, key="a", value_encrypted=b"1"),
            Secret(scope_id=scope.id, key="b", value_encrypted=b"2"),
            Secret(scope_id=other.id, key="a", value_encrypted=b"3"),
            SecretAcl(scope_id=scope.id, principal="users", permission="READ"),
        )
        scope_id, other_id = scope.id, other.id
    async with db.session() as session:
        # A bulk Core delete: the database itself must cascade, not the ORM.
        await session.execute(delete(SecretScope).where(SecretScope.id == scope_id))
    async with db.session() as session:
        rows = (await session.execute(select(Secret.scope_id, Secret.key))).all()
        assert [tuple(r) for r in rows] == [(other_id, "a")]
        assert (await session.scalars(select(SecretAcl))).all() == []


async def test_deleting_a_group_removes_its_memberships(db: Database) -> None:
    async with db.session() as session:
        user = await make_user(session)
        outer, inner = Group(display_name="outer"), Group(display_name="inner")
        await add(session, outer, inner)
        await add(
            session,
            GroupMember(group_id=outer.id, member_group_id=inner.id),
            GroupMember(group_id=inner.id, member_user_id=user.id),
        )
        inner_id = inner.id
    async with db.session() as session:
        await session.execute(delete(Group).where(Group.id == inner_id))
    async with db.session() as session:
        assert (await session.scalars(select(GroupMember))).all() == []
        assert (await session.scalars(select(User.user_name))).all() == ["ada@example.com"]


def test_find_pg_bin_prefers_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("initdb", "pg_ctl", "postgres"):
        exe = tmp_path / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setenv("KILN_TEST_PG_BIN", str(tmp_path))
    assert find_pg_bin() == tmp_path
    # A directory without the server binary itself is not a PostgreSQL server install.
    (tmp_path / "postgres").unlink()
    assert find_pg_bin() != tmp_path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from kiln.errors import InvalidParameterValue
from kiln.identity.scim_filter import compile_filter

meta = MetaData()
people = Table(
    "people",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("n", Integer),
)
COLUMNS = {"userName": people.c.name, "id": people.c.id, "n": people.c.n}


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    eng = create_engine("sqlite://")
    meta.create_all(eng)
    with eng.begin() as conn:
        conn.execute(
            insert(people),
            [
                {"id": 1, "name": "Alice@x.com", "n": 1},
                {"id": 2, "name": "bob@x.com", "n": 2},
                {"id": 3, "name": "carol@y.org", "n": 3},
            ],
        )
    yield eng
    eng.dispose()


def ids(engine, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    where = compile_filter(text, COLUMNS)
    query = select(people.c.id).order_by(people.c.id)
    if where is not None:
        query = query.where(where)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "alice@x.com"', [1]),
        ('userName ne "alice@x.com"', [2, 3]),
        ('userName co "@x."', [1, 2]),
        ('userName sw "car"', [3]),
        ('userName ew ".org"', [3]),
        ('userName co "x" and n gt 1', [2]),
        ('userName sw "a" or userName sw "b"', [1, 2]),
        ('(userName sw "a" or userName sw "c") and n ge 3', [3]),
        ("userName pr", [1, 2, 3]),
        ("", [1, 2, 3]),
        ('userName co "%"', []),
    ],
)
def test_filters(engine, text: str, expected: list[int]) -> None:  # type: ignore[no-untyped-def]
    assert ids(engine, text) == expected


@pytest.mark.parametrize(
    "text", ['nope eq "x"', 'userName xx "x"', "userName eq", 'userName eq "x" and', "(n eq 1"]
)
def test_bad_filters_are_400(text: str) -> None:
    with pytest.raises(InvalidParameterValue):
        compile_filter(text, COLUMNS)

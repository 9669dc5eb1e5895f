"""The online store and the scorer's feature lookups: publish, keys as requests send them,
point reads by key, and the 400s for keys or tables the store does not hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from kiln.errors import InvalidParameterValue
from kiln.ml.serving.online_lookup import LookupModel
from kiln.ml.serving.online_store import OnlineStore, key_of

ROWS = {"columns": ["k", "f", "g"], "data": [[1, 1.5, "a"], [2, 2.5, "b"]]}


def test_key_of_matches_numpy_pandas_and_json_numbers() -> None:
    assert key_of([np.int64(2)]) == key_of([2]) == key_of([2.0]) == "[2]"
    assert key_of(["c1", 2.5]) == '["c1", 2.5]'


def _publish(store: OnlineStore, rows: Any, mode: str = "merge") -> int:
    return asyncio.run(store.publish("main.default.t", ["k"], rows, mode))


def test_publish_merges_and_overwrites(tmp_path: Path) -> None:
    store = OnlineStore(tmp_path / "online.db")
    assert _publish(store, ROWS) == 2
    assert _publish(store, {"columns": ["k", "f", "g"], "data": [[3, 0.0, "c"]]}) == 3
    assert _publish(store, {"columns": ["k", "f", "g"], "data": [[3, 1.0, "c"]]}, "overwrite") == 1
    asyncio.run(store.drop("main.default.t"))
    assert _publish(store, ROWS) == 2


@pytest.mark.parametrize(
    ("rows", "mode", "message"),
    [
        (ROWS, "append", "Invalid mode"),
        ([[1]], "merge", "must be an object"),
        ({"columns": "k", "data": []}, "merge", "list of column names"),
        ({"columns": ["k"], "data": [[1, 2]]}, "merge", "as long as"),
        ({"columns": ["f"], "data": [[1]]}, "merge", "no primary key"),
        ({"columns": ["k"], "data": [[1], [1.0]]}, "merge", "twice"),
    ],
)
def test_publish_refuses_bad_rows(tmp_path: Path, rows: Any, mode: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        _publish(OnlineStore(tmp_path / "online.db"), rows, mode)


class _Model:
    """A stand-in pyfunc model: echoes its input's columns and first row."""

    class metadata:  # the attribute pyfunc models have
        @staticmethod
        def get_input_schema() -> None:
            return None

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> list[Any]:
        return [list(frame.columns), frame.to_dict("records")]


SPEC = {
    "feature_lookups": [
        {
            "table_name": "MAIN.default.t",
            "lookup_key": ["k"],
            "feature_names": None,
            "rename_outputs": {"g": "g2"},
        }
    ],
    "label": "y",
    "exclude_columns": ["note"],
}


def test_lookup_model_joins_features_by_key(tmp_path: Path) -> None:
    store = OnlineStore(tmp_path / "online.db")
    _publish(store, ROWS)
    model = LookupModel(_Model(), SPEC, store.path)
    columns, records = model.predict(pd.DataFrame({"k": [2, 1], "y": [0, 0], "note": ["x", "y"]}))
    assert columns == ["k", "f", "g2"]
    assert records == [{"k": 2, "f": 2.5, "g2": "b"}, {"k": 1, "f": 1.5, "g2": "a"}]
    # Features the request carries are not looked up again.
    _, records = model.predict(pd.DataFrame({"k": [1], "f": [9.0], "g2": ["z"]}))
    assert records == [{"k": 1, "f": 9.0, "g2": "z"}]


def test_lookup_model_400s(tmp_path: Path) -> None:
    store = OnlineStore(tmp_path / "online.db")
    model = LookupModel(_Model(), SPEC, store.path)
    with pytest.raises(MlflowException, match="Nothing is published"):
        model.predict(pd.DataFrame({"k": [1]}))
    asyncio.run(store.publish("main.default.other", ["k"], ROWS, "merge"))
    with pytest.raises(MlflowException, match="not published to the online store"):
        model.predict(pd.DataFrame({"k": [1]}))
    _publish(store, ROWS)
    with pytest.raises(MlflowException, match=r"key\(s\) \[7\]") as raised:
        model.predict(pd.DataFrame({"k": [1, 7]}))
    assert raised.value.get_http_status_code() == 400
    with pytest.raises(MlflowException, match="no lookup key column"):
        model.predict(pd.DataFrame({"x": [1]}))

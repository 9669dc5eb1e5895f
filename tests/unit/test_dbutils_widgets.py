"""dbutils.widgets: definitions, defaults, run parameters and %run arguments (pure)."""

from __future__ import annotations

import pytest

from kiln.driver.dbutils import ExecutionError, InputWidgetNotDefined
from kiln.driver.dbutils.widgets import WidgetsUtils


def test_defaults_and_parameters() -> None:
    widgets = WidgetsUtils()
    widgets.text("name", "world", "Name")
    widgets.dropdown("color", "red", ["red", "blue"])
    widgets.combobox("fruit", "kiwi", ["apple", "pear"])
    widgets.multiselect("days", "mon,tue", ["mon", "tue", "wed"])
    assert widgets.get("name") == "world"
    assert widgets.get("fruit") == "kiwi"  # a combobox takes any value
    assert widgets.get("days") == "mon,tue"
    assert widgets.getAll() == {"name": "world", "color": "red", "fruit": "kiwi", "days": "mon,tue"}
    widgets._bind({"name": "kiln", "extra": "1"})
    assert widgets.get("name") == "kiln"
    assert widgets.get("extra") == "1"  # a parameter without a widget, as in jobs
    assert widgets.getAll()["name"] == "kiln"
    assert widgets.getArgument("missing", "fallback") == "fallback"


def test_run_arguments_push_and_pop() -> None:
    widgets = WidgetsUtils()
    widgets._bind({"a": "1"})
    widgets._push({"b": "2"})
    assert (widgets.get("a"), widgets.get("b")) == ("1", "2")
    widgets._pop()
    with pytest.raises(InputWidgetNotDefined):
        widgets.get("b")
    widgets._pop()  # never below the run's own parameters
    assert widgets.get("a") == "1"


def test_remove_and_remove_all() -> None:
    widgets = WidgetsUtils()
    widgets.text("a", "1")
    widgets.text("b", "2")
    widgets.remove("a")
    with pytest.raises(InputWidgetNotDefined, match="No input widget named a"):
        widgets.get("a")
    with pytest.raises(InputWidgetNotDefined):
        widgets.remove("a")
    widgets.removeAll()
    assert widgets.getAll() == {}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: w.text("", "x"), "non-empty"),
        (lambda w: w.text("a", 1), "must be a str"),
        (lambda w: w.dropdown("a", "z", ["x", "y"]), "not one of the choices"),
        (lambda w: w.dropdown("a", "x", "xy"), "list of str"),
        (lambda w: w.dropdown("a", "x", []), "needs choices"),
        (lambda w: w.multiselect("a", "x,z", ["x", "y"]), "not one of the choices"),
    ],
)
def test_bad_definitions_are_refused(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ExecutionError, match=message):
        call(WidgetsUtils())


def test_help_lists_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    WidgetsUtils().help()
    out = capsys.readouterr().out
    for name in ("text", "dropdown", "combobox", "multiselect", "get", "getAll", "remove"):
        assert f"\n{name}(" in out
    WidgetsUtils().help("text")
    assert "defaultValue" in capsys.readouterr().out
    with pytest.raises(ExecutionError, match="no method"):
        WidgetsUtils().help("nope")

"""`dbutils.widgets`: input widgets, whose values come from the notebook run's parameters
when they were passed, else from their defaults.

In a notebook run a parameter is readable with `get` even without a widget definition (as
in Databricks jobs); `%run ./x $a="1"` pushes parameters for the inlined notebook only.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.driver.dbutils.errors import ExecutionError, InputWidgetNotDefined
from kiln.driver.dbutils.help import Helpful

__all__ = ["Widget", "WidgetsUtils"]

KINDS = ("text", "dropdown", "combobox", "multiselect")


@dataclass(frozen=True, slots=True)
class Widget:
    """One widget's definition."""

    name: str
    kind: str
    default: str
    label: str | None
    choices: tuple[str, ...] = ()


def _name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ExecutionError(
            "java.lang.IllegalArgumentException: a widget name must be a non-empty str."
        )
    return value


def _not_defined(name: str) -> InputWidgetNotDefined:
    return InputWidgetNotDefined(
        f"com.databricks.dbutils_v1.InputWidgetNotDefined: No input widget named {name} is defined"
    )


def _valid(widget: Widget, value: str) -> bool:
    """Whether `value` may be the widget's value (dropdowns and multiselects: their choices)."""
    if widget.kind in ("text", "combobox"):
        return True
    if widget.kind == "multiselect":
        return all(v in widget.choices for v in value.split(",")) if value else True
    return value in widget.choices


class WidgetsUtils(Helpful):
    """Creates and reads input widgets (parameters of the notebook run win over defaults)."""

    _TITLE = "dbutils.widgets"
    _INTRO = "methods to create and get bound value of input widgets inside notebooks."
    _HELP = (
        "combobox",
        "dropdown",
        "get",
        "getAll",
        "getArgument",
        "multiselect",
        "remove",
        "removeAll",
        "text",
    )

    def __init__(self) -> None:
        self._widgets: dict[str, Widget] = {}
        # Values chosen in the web workspace's widgets bar (over the defaults).
        self._values: dict[str, str] = {}
        # A stack: the run's parameters, then one level per `%run` with arguments.
        self._parameters: list[dict[str, str]] = [{}]

    # -- binding (the notebook runner) ------------------------------------------------------------

    def _bind(self, parameters: dict[str, str]) -> None:
        """Set the run's parameters (replacing any bound before)."""
        self._parameters = [dict(parameters)]

    def _push(self, parameters: dict[str, str]) -> None:
        """Parameters of a `%run` with arguments, on top of the current ones."""
        self._parameters.append({**self._parameters[-1], **parameters})

    def _pop(self) -> None:
        """Back to the parameters before the last `_push`."""
        if len(self._parameters) > 1:
            self._parameters.pop()

    @property
    def _current(self) -> dict[str, str]:
        return self._parameters[-1]

    # -- definitions -------------------------------------------------------------------------------

    def _define(
        self,
        kind: str,
        name: str,
        default: object,
        label: str | None,
        choices: object = (),
    ) -> None:
        name = _name(name)
        if not isinstance(default, str):
            raise ExecutionError(
                f"java.lang.IllegalArgumentException: defaultValue of {name} must be a str."
            )
        options: tuple[str, ...] = ()
        if kind != "text":
            if not isinstance(choices, list | tuple) or not all(
                isinstance(c, str) for c in choices
            ):
                raise ExecutionError(
                    f"java.lang.IllegalArgumentException: choices of {name} must be a list of str."
                )
            options = tuple(choices)
            if not options:
                raise ExecutionError(f"java.lang.IllegalArgumentException: {name} needs choices.")
            defaults = default.split(",") if kind == "multiselect" else [default]
            if kind != "combobox" and any(d not in options for d in defaults):
                raise ExecutionError(
                    f"java.lang.IllegalArgumentException: Default value {default!r} of {name} "
                    f"is not one of the choices {list(options)}."
                )
        self._widgets[name] = Widget(name, kind, default, label, options)
        # Redefining keeps a chosen value only while it is still valid.
        chosen = self._values.get(name)
        if chosen is not None and not _valid(self._widgets[name], chosen):
            del self._values[name]

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        """Creates a text input widget with a given name and default value."""
        self._define("text", name, defaultValue, label)

    def dropdown(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a dropdown input widget with given name, default value and choices."""
        self._define("dropdown", name, defaultValue, label, choices)

    def combobox(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a combobox input widget with given name, default value and choices."""
        self._define("combobox", name, defaultValue, label, choices)

    def multiselect(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a multiselect input widget with given name, default value and choices."""
        self._define("multiselect", name, defaultValue, label, choices)

    # -- values ------------------------------------------------------------------------------------

    def get(self, name: str) -> str:
        """Retrieves current value of an input widget (a multiselect's as comma-separated text)."""
        name = _name(name)
        if name in self._current:
            return self._current[name]
        widget = self._widgets.get(name)
        if widget is None:
            raise _not_defined(name)
        return self._values.get(name, widget.default)

    def getArgument(self, name: str, optional: str | None = None) -> str | None:
        """Deprecated: the value of a widget or parameter, else `optional`."""
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return optional

    def getAll(self) -> dict[str, str]:
        """Retrieves a map of all widget names and their current values (parameters included)."""
        values = {name: self._values.get(name, w.default) for name, w in self._widgets.items()}
        values.update(self._current)
        return values

    def remove(self, name: str) -> None:
        """Removes an input widget from the notebook."""
        name = _name(name)
        self._values.pop(name, None)
        if self._widgets.pop(name, None) is None:
            raise _not_defined(name)

    def removeAll(self) -> None:
        """Removes all widgets in the notebook."""
        self._widgets.clear()
        self._values.clear()

    # -- the web workspace's widgets bar -----------------------------------------------------------

    def _describe(self) -> list[dict[str, object]]:
        """Every widget's definition and current value, in definition order."""
        return [
            {
                "name": w.name,
                "kind": w.kind,
                "label": w.label if w.label is not None else w.name,
                "default": w.default,
                "choices": list(w.choices),
                "value": self.get(w.name),
            }
            for w in self._widgets.values()
        ]

    def _set(self, name: str, value: object) -> list[dict[str, object]]:
        """Set a widget's value (as chosen in the widgets bar); the new description."""
        name = _name(name)
        widget = self._widgets.get(name)
        if widget is None:
            raise _not_defined(name)
        if not isinstance(value, str) or not _valid(widget, value):
            raise ExecutionError(
                f"java.lang.IllegalArgumentException: {value!r} is not a valid value of {name}."
            )
        self._values[name] = value
        return self._describe()

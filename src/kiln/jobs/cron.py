"""Quartz cron expressions, as Databricks job schedules use them.

`second minute hour day-of-month month day-of-week [year]`, with Quartz's numbering (day of
week 1-7 is SUN-SAT) and its special characters: `*`, `?` (exactly one of day-of-month and
day-of-week), ranges (wrapping, e.g. `FRI-MON` or `22-2`), lists, increments (`0/15`,
`*/5`, `10-40/10`), `L` (last day of month, `L-3`, `LW`; `6L` the last Friday), `W`
(nearest weekday, `15W`) and `#` (`6#3`, the third Friday). Names (`JAN`, `MON`) are
case-insensitive.

Fire times are wall-clock times in the schedule's zone: a time that does not exist there (a
DST gap) is skipped, and an ambiguous one (the hour repeated when clocks go back) fires once,
at its first occurrence. PyPI has no maintained Quartz implementation (croniter counts
weekdays from 0 = Sunday and has no `nL`/`LW`/`L-n`; cronsim has no seconds field), hence
this module.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CronError", "QuartzCron", "parse_timezone"]

MIN_YEAR = 1970
MAX_YEAR = 2099
# Literal names: calendar.month_abbr follows the process locale.
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


class CronError(ValueError):
    """A malformed cron expression; the message names the field."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_SECOND = _Field("seconds", 0, 59)
_MINUTE = _Field("minutes", 0, 59)
_HOUR = _Field("hours", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day-of-week", 1, 7, _DAYS)
_YEAR = _Field("year", MIN_YEAR, MAX_YEAR)


def _number(token: str, field: _Field) -> int:
    text = token.strip().upper()
    if field.names and text in field.names:
        return field.names[text]
    if not text.isdigit():
        raise CronError(f"{field.name}: {token!r} is not a valid value.")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is out of range {field.low}-{field.high}.")
    return value


def _span(low: int, high: int, field: _Field) -> list[int]:
    """Values from low to high, wrapping past the field's end (Quartz's overflow ranges)."""
    if low <= high:
        return list(range(low, high + 1))
    return list(range(low, field.high + 1)) + list(range(field.low, high + 1))


def _values(text: str, field: _Field) -> frozenset[int]:
    """The values a plain field (no L, W or #) selects."""
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name}: empty list item in {text!r}.")
        base, slash, step_text = part.partition("/")
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field.name}: increment {step_text!r} must be a positive number.")
            step = int(step_text)
            if step > field.high - field.low + 1:
                raise CronError(f"{field.name}: increment {step} is larger than the field's range.")
        else:
            step = 1
        if base == "*" or (slash and base == "?"):
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _number(first, field), _number(last, field)
        else:
            low = _number(base, field)
            # `a/b` runs from a to the field's end; a bare value is itself.
            high = field.high if slash else low
        span = _span(low, high, field)
        out.update(span[::step])
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class _DaySpec:
    """Which days of a month fire: by day of month or by day of week (never both)."""

    kind: str  # "dom", "last", "weekday", "last_weekday", "dow", "dow_last", "dow_nth"
    values: frozenset[int] = frozenset()
    offset: int = 0  # L-n; the n of W; the weekday of nL and n#k
    nth: int = 0

    def days(self, year: int, month: int) -> list[int]:
        """The days of `month` this spec selects, ascending."""
        last = calendar.monthrange(year, month)[1]
        if self.kind == "dom":
            return sorted(d for d in self.values if d <= last)
        if self.kind == "last":
            day = last - self.offset
            return [day] if day >= 1 else []
        if self.kind == "weekday":
            return [] if self.offset > last else [_nearest_weekday(year, month, self.offset)]
        if self.kind == "last_weekday":
            return [_nearest_weekday(year, month, last)]
        weekdays = [(d, _quartz_dow(year, month, d)) for d in range(1, last + 1)]
        if self.kind == "dow":
            return [d for d, w in weekdays if w in self.values]
        matching = [d for d, w in weekdays if w == self.offset]
        if self.kind == "dow_last":
            return matching[-1:]
        return [matching[self.nth - 1]] if len(matching) >= self.nth else []


def _quartz_dow(year: int, month: int, day: int) -> int:
    """Quartz's day of week: 1 = Sunday ... 7 = Saturday."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int) -> int:
    """The weekday nearest `day` without leaving the month (Quartz's `W`)."""
    last = calendar.monthrange(year, month)[1]
    weekday = calendar.weekday(year, month, day)
    if weekday == 5:  # Saturday: Friday, or Monday when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday, or Friday when the last day is a Sunday
        return day + 1 if day < last else day - 2
    return day


def _day_of_month(text: str) -> _DaySpec:
    upper = text.upper()
    if upper == "L":
        return _DaySpec("last")
    if upper == "LW":
        return _DaySpec("last_weekday")
    if upper.startswith("L-"):
        rest = upper[2:]
        if not rest.isdigit() or not 0 <= int(rest) <= 30:
            raise CronError(f"day-of-month: {text!r} needs an offset of 0-30 after 'L-'.")
        return _DaySpec("last", offset=int(rest))
    if upper.endswith("W"):
        day = _number(upper[:-1], _DOM) if upper[:-1] else 0
        if not day:
            raise CronError(f"day-of-month: {text!r} needs a day before 'W'.")
        return _DaySpec("weekday", offset=day)
    if "L" in upper or "W" in upper or "#" in upper:
        raise CronError(f"day-of-month: {text!r} is not valid ('L' and 'W' stand alone).")
    return _DaySpec("dom", _values(text, _DOM))


def _day_of_week(text: str) -> _DaySpec:
    upper = text.upper()
    if upper == "L":
        return _DaySpec("dow", frozenset({7}))
    if "#" in upper:
        day, _, nth = upper.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise CronError(f"day-of-week: {text!r} needs an occurrence of 1-5 after '#'.")
        return _DaySpec("dow_nth", offset=_number(day, _DOW), nth=int(nth))
    if upper.endswith("L"):
        return _DaySpec("dow_last", offset=_number(upper[:-1], _DOW))
    if "L" in upper or "W" in upper.replace("WED", ""):
        raise CronError(f"day-of-week: {text!r} is not valid.")
    return _DaySpec("dow", _values(text, _DOW))


class QuartzCron:
    """A parsed Quartz cron expression in a time zone; `next_after` gives fire times."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        if not isinstance(expression, str):
            raise CronError("The cron expression must be a string.")
        parts = expression.split()
        if len(parts) not in (6, 7):
            raise CronError(
                f"{expression!r} has {len(parts)} fields; a Quartz cron expression has 6 or 7 "
                "(seconds minutes hours day-of-month month day-of-week [year])."
            )
        self.expression = " ".join(parts)
        self.zone = parse_timezone(timezone)
        self.seconds = sorted(_values(parts[0], _SECOND))
        self.minutes = sorted(_values(parts[1], _MINUTE))
        self.hours = sorted(_values(parts[2], _HOUR))
        self.months = frozenset(_values(parts[4], _MONTH))
        years = parts[6] if len(parts) == 7 else "*"
        self.years = frozenset(_values(years, _YEAR))
        dom, dow = parts[3], parts[5]
        if (dom == "?") == (dow == "?"):
            raise CronError(
                "day-of-month and day-of-week: exactly one of them must be '?' (Quartz does not "
                "support both, or neither)."
            )
        self.days = _day_of_week(dow) if dom == "?" else _day_of_month(dom)
        if self.next_after(datetime.now(UTC)) is None:
            raise CronError(f"{self.expression!r} never fires after now.")

    def _times(self, start: tuple[int, int, int]) -> Iterator[tuple[int, int, int]]:
        """(hour, minute, second) of a day from `start` on, ascending."""
        h0, m0, s0 = start
        for hour in self.hours[bisect_left(self.hours, h0) :]:
            minutes = self.minutes[bisect_left(self.minutes, m0) :] if hour == h0 else self.minutes
            for minute in minutes:
                if hour == h0 and minute == m0:
                    seconds = self.seconds[bisect_left(self.seconds, s0) :]
                else:
                    seconds = self.seconds
                for second in seconds:
                    yield hour, minute, second

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (aware, UTC); None if there is none."""
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        local = after.astimezone(self.zone).replace(tzinfo=None, microsecond=0)
        local += timedelta(seconds=1)
        for year in range(local.year, MAX_YEAR + 1):
            if year not in self.years:
                continue
            for month in range(1, 13):
                if month not in self.months or (year, month) < (local.year, local.month):
                    continue
                for day in self.days.days(year, month):
                    if (year, month, day) < (local.year, local.month, local.day):
                        continue
                    today = (year, month, day) == (local.year, local.month, local.day)
                    start = (local.hour, local.minute, local.second) if today else (0, 0, 0)
                    found = self._first_on(year, month, day, start, after)
                    if found is not None:
                        return found
        return None

    def _first_on(
        self, year: int, month: int, day: int, start: tuple[int, int, int], after: datetime
    ) -> datetime | None:
        for hour, minute, second in self._times(start):
            wall = datetime(year, month, day, hour, minute, second)
            aware = wall.replace(tzinfo=self.zone)
            instant = aware.astimezone(UTC)
            if instant.astimezone(self.zone).replace(tzinfo=None) != wall:
                continue  # a wall time the zone skips (DST gap)
            if instant > after:
                return instant
        return None


def parse_timezone(name: object) -> ZoneInfo:
    """A Java-style time zone id (`Europe/Amsterdam`, `UTC`); CronError if unknown."""
    if not isinstance(name, str) or not name:
        raise CronError("timezone_id must be a time zone id such as 'UTC' or 'Europe/Paris'.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"timezone_id: unknown time zone {name!r}.") from None

"""Quartz cron expressions: fields, special characters, time zones and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kiln.jobs.cron import CronError, QuartzCron, parse_timezone

BASE = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def fires(expression: str, count: int = 3, *, start: datetime = BASE, tz: str = "UTC") -> list[str]:
    cron = QuartzCron(expression, tz)
    out = []
    moment: datetime | None = start
    for _ in range(count):
        assert moment is not None
        moment = cron.next_after(moment)
        if moment is None:
            break
        out.append(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    return out


def test_seconds_field_and_increments() -> None:
    assert fires("*/5 * * * * ?") == [
        "2024-01-01 00:00:05",
        "2024-01-01 00:00:10",
        "2024-01-01 00:00:15",
    ]
    assert fires("10-40/10 0 0 * * ?") == [
        "2024-01-01 00:00:10",
        "2024-01-01 00:00:20",
        "2024-01-01 00:00:30",
    ]
    assert fires("0 0/20 * * * ?")[:2] == ["2024-01-01 00:20:00", "2024-01-01 00:40:00"]


def test_next_is_strictly_after() -> None:
    cron = QuartzCron("0 0 12 * * ?")
    noon = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert cron.next_after(noon) == noon + timedelta(days=1)
    assert cron.next_after(noon - timedelta(microseconds=1)) == noon


def test_day_of_week_counts_from_sunday() -> None:
    assert fires("0 0 0 ? * 1", 2) == ["2024-01-07 00:00:00", "2024-01-14 00:00:00"]
    assert fires("0 0 12 ? * MON-FRI", 6)[4:] == ["2024-01-05 12:00:00", "2024-01-08 12:00:00"]
    assert fires("0 0 0 ? JUL-AUG wed", 1) == ["2024-07-03 00:00:00"]


def test_last_day_forms() -> None:
    assert fires("0 0 0 L * ?") == [
        "2024-01-31 00:00:00",
        "2024-02-29 00:00:00",
        "2024-03-31 00:00:00",
    ]
    assert fires("0 0 0 L-3 * ?", 2) == ["2024-01-28 00:00:00", "2024-02-26 00:00:00"]
    # The last weekday of March 2024 is Friday the 29th.
    assert fires("0 0 0 LW * ?", 3)[2] == "2024-03-29 00:00:00"
    # The last Friday; L alone in day-of-week is Saturday.
    assert fires("0 0 0 ? * 6L", 2) == ["2024-01-26 00:00:00", "2024-02-23 00:00:00"]
    assert fires("0 30 10 ? * L", 1) == ["2024-01-06 10:30:00"]


def test_nearest_weekday_and_nth_weekday() -> None:
    # June 15 2024 is a Saturday: 15W fires on Friday the 14th.
    assert fires("0 0 0 15W * ?", 1, start=datetime(2024, 6, 1, tzinfo=UTC)) == [
        "2024-06-14 00:00:00"
    ]
    # June 1 2024 is a Saturday: 1W fires on Monday the 3rd, never in May.
    assert fires("0 0 0 1W * ?", 1, start=datetime(2024, 5, 20, tzinfo=UTC)) == [
        "2024-06-03 00:00:00"
    ]
    assert fires("0 0 0 ? * 6#3", 2) == ["2024-01-19 00:00:00", "2024-02-16 00:00:00"]
    # A fifth Monday exists only in some months.
    assert fires("0 0 0 ? * MON#5", 1) == ["2024-01-29 00:00:00"]


def test_wrapping_ranges_and_years() -> None:
    assert fires("0 0 22-2 ? * FRI-MON", 4) == [
        "2024-01-01 01:00:00",
        "2024-01-01 02:00:00",
        "2024-01-01 22:00:00",
        "2024-01-01 23:00:00",
    ]
    assert fires("0 0 0 1 1 ? 2030", 3) == ["2030-01-01 00:00:00"]


def test_time_zones_and_daylight_saving() -> None:
    assert fires("0 0 9 * * ?", 1, tz="Europe/Amsterdam") == ["2024-01-01 08:00:00"]
    # 02:30 does not exist in New York on 2024-03-10: that day is skipped.
    start = datetime(2024, 3, 9, 12, tzinfo=UTC)
    assert fires("0 30 2 * * ?", 2, start=start, tz="America/New_York") == [
        "2024-03-11 06:30:00",
        "2024-03-12 06:30:00",
    ]
    # 01:30 happens twice on 2024-11-03: it fires once.
    start = datetime(2024, 11, 3, 0, tzinfo=UTC)
    assert fires("0 30 1 * * ?", 2, start=start, tz="America/New_York") == [
        "2024-11-03 05:30:00",
        "2024-11-04 06:30:00",
    ]


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("* * *", "fields"),
        ("0 0 0 * * *", "exactly one"),
        ("0 0 0 ? * ?", "exactly one"),
        ("61 * * * * ?", "seconds"),
        ("0 60 * * * ?", "minutes"),
        ("0 0 24 * * ?", "hours"),
        ("0 0 0 32 * ?", "day-of-month"),
        ("0 0 0 1 13 ?", "month"),
        ("0 0 0 ? * 8", "day-of-week"),
        ("0 0 0 ? * 6#6", "day-of-week"),
        ("*/0 * * * * ?", "seconds"),
        ("0 0 0 1,L * ?", "day-of-month"),
        ("0 0 0 LX * ?", "day-of-month"),
        ("0 0 0 ? * FOO", "day-of-week"),
        ("0 0 0 1 1 ? 1969", "year"),
        ("0 0 0 30 2 ?", "never fires"),
    ],
)
def test_malformed_expressions_name_the_field(expression: str, field: str) -> None:
    with pytest.raises(CronError, match=field):
        QuartzCron(expression)


def test_time_zone_ids() -> None:
    assert str(parse_timezone("Europe/Paris")) == "Europe/Paris"
    for bad in ("Mars/Olympus", "", None, "../etc/passwd"):
        with pytest.raises(CronError, match="timezone_id"):
            parse_timezone(bad)

"""Schedules in the shop's time zone: exact boundaries, across daylight-saving changes."""

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest

from campaigns.schedule import (
    DailyHours,
    Schedule,
    SeasonalWindow,
    YearlyWindow,
    local_instant,
    parse_month_day,
    schedule_active,
    schedule_end,
    schedule_next_boundary,
    schedule_phase,
    seasonal_multiplier,
    until_label,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
SECOND = timedelta(seconds=1)
OFFICE_HOURS = Schedule(hours=DailyHours(start=time(9), end=time(17)))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "opens_utc", "closes_utc"),
    [
        # Saturday before the spring change: CET, UTC+1
        (date(2026, 3, 28), utc(2026, 3, 28, 8), utc(2026, 3, 28, 16)),
        # The day of the change (02:00 -> 03:00): already CEST, UTC+2
        (date(2026, 3, 29), utc(2026, 3, 29, 7), utc(2026, 3, 29, 15)),
        # Saturday before the autumn change: CEST
        (date(2026, 10, 24), utc(2026, 10, 24, 7), utc(2026, 10, 24, 15)),
        # The day of the change (03:00 -> 02:00): CET from 01:00 UTC
        (date(2026, 10, 25), utc(2026, 10, 25, 8), utc(2026, 10, 25, 16)),
    ],
)
def test_hours_window_opens_and_closes_at_local_nine_and_five_across_dst(day, opens_utc, closes_utc):
    # Given 09:00-17:00 in Berlin
    # Then it switches exactly at the local boundaries, whatever the UTC offset that day
    assert schedule_active(OFFICE_HOURS, opens_utc - SECOND, BERLIN) is False
    assert schedule_active(OFFICE_HOURS, opens_utc, BERLIN) is True
    assert schedule_active(OFFICE_HOURS, closes_utc - SECOND, BERLIN) is True
    assert schedule_active(OFFICE_HOURS, closes_utc, BERLIN) is False
    # And the next boundary after the previous evening is that morning's opening
    evening_before = datetime.combine(day - timedelta(days=1), time(20), tzinfo=BERLIN)
    assert schedule_next_boundary(OFFICE_HOURS, evening_before, BERLIN) == opens_utc
    assert schedule_next_boundary(OFFICE_HOURS, opens_utc, BERLIN) == closes_utc


def test_window_starting_in_the_skipped_spring_hour_opens_when_the_clock_jumps():
    # Given 02:30-04:00 local; on 29 March 2026 the clock jumps from 02:00 to 03:00
    schedule = Schedule(hours=DailyHours(start=time(2, 30), end=time(4)))
    jump = utc(2026, 3, 29, 1)  # 02:00 CET == 03:00 CEST
    # Then it opens at the jump, not an hour late
    assert schedule_active(schedule, jump - SECOND, BERLIN) is False
    assert schedule_active(schedule, jump, BERLIN) is True
    assert schedule_next_boundary(schedule, utc(2026, 3, 29, 0), BERLIN) == jump
    assert local_instant(datetime(2026, 3, 29, 2, 30), BERLIN) == jump


def test_window_in_the_repeated_autumn_hour_is_active_both_times():
    # Given 02:00-02:30 local; on 25 October 2026 02:00-03:00 happens twice
    schedule = Schedule(hours=DailyHours(start=time(2), end=time(2, 30)))
    first, second = utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)  # 02:00 CEST, 02:00 CET
    # Then it is active in both occurrences and switches at each boundary
    assert [schedule_active(schedule, t, BERLIN) for t in (first, first + timedelta(minutes=45))] == [True, False]
    assert [schedule_active(schedule, t, BERLIN) for t in (second, second + timedelta(minutes=45))] == [True, False]
    assert schedule_next_boundary(schedule, first + timedelta(minutes=45), BERLIN) == second


def test_absolute_start_and_end_switch_at_the_exact_instant():
    # Given Black Friday 09:00 to Cyber Monday 00:00 in Berlin (CET)
    starts, ends = datetime(2026, 11, 27, 9, tzinfo=BERLIN), datetime(2026, 12, 1, 0, tzinfo=BERLIN)
    schedule = Schedule(starts_at=starts.astimezone(UTC), ends_at=ends.astimezone(UTC))
    # Then: start included, end excluded
    assert schedule_active(schedule, utc(2026, 11, 27, 8) - SECOND, BERLIN) is False
    assert schedule_active(schedule, utc(2026, 11, 27, 8), BERLIN) is True
    assert schedule_active(schedule, utc(2026, 11, 30, 23) - SECOND, BERLIN) is True
    assert schedule_active(schedule, utc(2026, 11, 30, 23), BERLIN) is False
    assert schedule_phase(schedule, utc(2026, 11, 1), BERLIN) == "scheduled"
    assert schedule_phase(schedule, utc(2026, 11, 28), BERLIN) == "live"
    assert schedule_phase(schedule, utc(2026, 12, 1), BERLIN) == "ended"
    assert schedule_next_boundary(schedule, utc(2026, 12, 1), BERLIN) is None


def test_yearly_window_across_new_year_uses_the_local_calendar():
    # Given 20 Dec to 6 Jan every year
    schedule = Schedule(yearly=YearlyWindow(first=(12, 20), last=(1, 6)))
    opens = datetime(2026, 12, 20, tzinfo=BERLIN).astimezone(UTC)  # 19 Dec 23:00 UTC
    closes = datetime(2027, 1, 7, tzinfo=BERLIN).astimezone(UTC)
    assert opens == utc(2026, 12, 19, 23)
    assert schedule_active(schedule, opens - SECOND, BERLIN) is False
    assert schedule_active(schedule, opens, BERLIN) is True
    assert schedule_active(schedule, closes - SECOND, BERLIN) is True
    assert schedule_active(schedule, closes, BERLIN) is False
    assert schedule_next_boundary(schedule, utc(2026, 6, 1), BERLIN) == opens
    assert schedule_next_boundary(schedule, opens, BERLIN) == closes
    assert schedule.yearly.occurrence(date(2027, 1, 3)) == (date(2026, 12, 20), date(2027, 1, 6))
    assert schedule_end(schedule, utc(2027, 1, 3), BERLIN) == closes


def test_weekdays_and_hours_combine():
    # Given weekends 10:00-12:00
    schedule = Schedule(weekdays=frozenset({5, 6}), hours=DailyHours(start=time(10), end=time(12)))
    saturday_ten = datetime(2026, 12, 5, 10, tzinfo=BERLIN).astimezone(UTC)
    assert schedule_active(schedule, saturday_ten, BERLIN) is True
    assert schedule_active(schedule, saturday_ten - timedelta(days=1), BERLIN) is False  # Friday
    # From Friday evening, the next switch is Saturday 10:00
    assert schedule_next_boundary(schedule, saturday_ten - timedelta(hours=14), BERLIN) == saturday_ten


def test_overnight_hours_cross_midnight():
    schedule = Schedule(hours=DailyHours(start=time(22), end=time(2)))
    assert [
        schedule_active(schedule, datetime(2026, 6, 1, h, tzinfo=BERLIN).astimezone(UTC), BERLIN)
        for h in (21, 22, 23, 0, 1, 2)
    ] == [False, True, True, True, True, False]


def test_until_label_names_the_last_day_or_the_end_time():
    at = utc(2026, 12, 2, 12)
    assert until_label(datetime(2026, 12, 25, tzinfo=BERLIN).astimezone(UTC), at, BERLIN) == " until 24 Dec"
    assert until_label(datetime(2026, 12, 24, 17, tzinfo=BERLIN).astimezone(UTC), at, BERLIN) == " until 24 Dec 17:00"
    assert until_label(datetime(2027, 1, 7, tzinfo=BERLIN).astimezone(UTC), at, BERLIN) == " until 6 Jan 2027"
    assert until_label(None, at, BERLIN) == ""


def test_seasonal_multiplier_ramps_up_holds_and_ramps_down():
    # Given a x2 boost from 20 Nov to 24 Dec, 5 days up and 4 days down
    window = SeasonalWindow(first_day=date(2026, 11, 20), last_day=date(2026, 12, 24))

    def at(*args: int) -> float:
        return seasonal_multiplier(window, 2.0, 5, 4, datetime(*args, tzinfo=BERLIN), BERLIN)

    assert at(2026, 11, 19, 23, 59) == 1.0  # before
    assert at(2026, 11, 20, 0, 0) == 1.0  # starts at 1
    assert at(2026, 11, 22, 12, 0) == pytest.approx(1.5)  # half way up
    assert at(2026, 11, 25, 0, 0) == pytest.approx(2.0)  # full
    assert at(2026, 12, 10, 8, 0) == pytest.approx(2.0)
    assert at(2026, 12, 23, 0, 0) == pytest.approx(1.5)  # two of four days left
    assert at(2026, 12, 25, 0, 0) == 1.0  # after


def test_yearly_seasonal_window_recurs():
    window = SeasonalWindow(yearly=YearlyWindow(first=(11, 20), last=(12, 24)))
    assert seasonal_multiplier(window, 1.5, 0, 0, datetime(2031, 12, 1, tzinfo=BERLIN), BERLIN) == 1.5
    assert seasonal_multiplier(window, 1.5, 0, 0, datetime(2031, 12, 25, tzinfo=BERLIN), BERLIN) == 1.0


@pytest.mark.parametrize(("text", "expected"), [("11-20", (11, 20)), ("02-29", (2, 29)), ("01-01", (1, 1))])
def test_month_day_parses(text, expected):
    assert parse_month_day(text) == expected


@pytest.mark.parametrize("text", ["2-3", "13-01", "02-30", "1120", "ab-cd", ""])
def test_month_day_rejects_non_days(text):
    with pytest.raises(ValueError):
        parse_month_day(text)

"""When something is active, in the shop's time zone. Pure functions, no Django.

A ``Schedule`` combines, all of which must hold:

- ``starts_at`` / ``ends_at``: absolute instants (stored in UTC, entered in the shop's
  time zone); active from ``starts_at`` (inclusive) until ``ends_at`` (exclusive).
- ``yearly``: every year from one month/day to another, both days included, by the
  shop's local calendar; may cross the new year (``12-20`` to ``01-06``).
- ``weekdays``: local weekdays (0 = Monday); empty means every day.
- ``hours``: a local time-of-day window ``[start, end)``; ``end <= start`` crosses
  midnight (22:00 to 02:00). Weekday and hours are checked independently against the
  local wall clock, so 22:00-02:00 on Fridays covers Friday 22:00-24:00 and Friday
  00:00-02:00.

Local time is the wall clock of the shop's zone via zoneinfo, so a 09:00-17:00 window
opens at 09:00 local on both sides of a daylight-saving change. A local time that does
not exist (skipped in spring) starts when the clock jumps past it; a local time that
occurs twice (autumn) is inside the window both times.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

BOUNDARY_HORIZON_DAYS = 400  # a yearly window recurs within this, so a boundary is found if one exists


def parse_month_day(value: str) -> tuple[int, int]:
    """``"11-20"`` -> (11, 20); raises ValueError for anything that is not a calendar day
    (``02-29`` is accepted: it exists in leap years)."""
    month_text, sep, day_text = value.partition("-")
    if not sep or not month_text.isdigit() or not day_text.isdigit() or len(month_text) != 2 or len(day_text) != 2:
        raise ValueError(f"{value!r} is not a month and day written MM-DD, e.g. 11-20")
    month, day = int(month_text), int(day_text)
    try:
        date(2024, month, day)  # a leap year, so 02-29 is valid
    except ValueError:
        raise ValueError(f"{value!r} is not a day of the year") from None
    return month, day


@dataclass(frozen=True)
class YearlyWindow:
    first: tuple[int, int]  # (month, day), included
    last: tuple[int, int]  # (month, day), included

    def contains(self, day: date) -> bool:
        month_day = (day.month, day.day)
        if self.first <= self.last:
            return self.first <= month_day <= self.last
        return month_day >= self.first or month_day <= self.last  # across the new year

    def occurrence(self, day: date) -> tuple[date, date] | None:
        """First and last day of the occurrence that contains ``day``, or None."""
        if not self.contains(day):
            return None
        start_year = day.year
        if self.first > self.last and (day.month, day.day) <= self.last:
            start_year -= 1
        end_year = start_year + (1 if self.first > self.last else 0)
        return _calendar_day(start_year, self.first), _calendar_day(end_year, self.last)

    def label(self) -> str:
        return f"{self.first[0]:02d}-{self.first[1]:02d} to {self.last[0]:02d}-{self.last[1]:02d}"


def _calendar_day(year: int, month_day: tuple[int, int]) -> date:
    """The day in ``year``; 29 Feb in a common year is 28 Feb."""
    month, day = month_day
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, day - 1)


@dataclass(frozen=True)
class DailyHours:
    start: time
    end: time  # exclusive; <= start crosses midnight

    def contains(self, wall: time) -> bool:
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@dataclass(frozen=True)
class Schedule:
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    yearly: YearlyWindow | None = None
    weekdays: frozenset[int] = frozenset()
    hours: DailyHours | None = None

    @property
    def recurring(self) -> bool:
        return self.yearly is not None or bool(self.weekdays) or self.hours is not None


def schedule_active(schedule: Schedule, at: datetime, tz: tzinfo) -> bool:
    """Whether the schedule is active at the instant ``at`` (aware) in zone ``tz``."""
    if schedule.starts_at is not None and at < schedule.starts_at:
        return False
    if schedule.ends_at is not None and at >= schedule.ends_at:
        return False
    if not schedule.recurring:
        return True
    local = at.astimezone(tz)
    if schedule.yearly is not None and not schedule.yearly.contains(local.date()):
        return False
    if schedule.weekdays and local.weekday() not in schedule.weekdays:
        return False
    return schedule.hours is None or schedule.hours.contains(local.time().replace(tzinfo=None))


def local_instant(wall: datetime, tz: tzinfo, *, fold: int = 0) -> datetime:
    """The UTC instant at which the local clock of ``tz`` first reads ``wall`` (naive).

    For a wall time skipped by a daylight-saving jump, the instant of the jump (the
    clock passes from before ``wall`` to after it). For a wall time that occurs twice,
    ``fold`` picks the first (0) or second (1) occurrence.
    """
    instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # Skipped wall time: the jump lies between the two readings of the offsets.
    low = wall.replace(tzinfo=tz, fold=1 - fold).astimezone(UTC)
    low, high = min(low, instant), max(low, instant)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _is_ambiguous(wall: datetime, tz: tzinfo) -> bool:
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    return first != second and local_instant(wall, tz, fold=1).astimezone(tz).replace(tzinfo=None) == wall


def _candidate_boundaries(schedule: Schedule, after: datetime, tz: tzinfo, horizon_days: int) -> list[datetime]:
    """Every instant after ``after`` at which the schedule could switch, within the horizon."""
    found = [t for t in (schedule.starts_at, schedule.ends_at) if t is not None and t > after]
    if not schedule.recurring:
        return sorted(found)
    begin = max(after, schedule.starts_at) if schedule.starts_at else after
    first_day = begin.astimezone(tz).date() - timedelta(days=1)
    walls: list[time] = []
    if schedule.yearly is not None or schedule.weekdays:
        walls.append(time(0))
    if schedule.hours is not None:
        walls += [schedule.hours.start, schedule.hours.end]
    for offset in range(horizon_days + 2):
        day = first_day + timedelta(days=offset)
        for wall_time in walls:
            wall = datetime.combine(day, wall_time)
            found.append(local_instant(wall, tz))
            if _is_ambiguous(wall, tz):
                found.append(local_instant(wall, tz, fold=1))
    if schedule.ends_at is not None:
        found = [t for t in found if t <= schedule.ends_at]
    return sorted({t for t in found if t > after})


def schedule_next_boundary(
    schedule: Schedule, after: datetime, tz: tzinfo, *, horizon_days: int = BOUNDARY_HORIZON_DAYS
) -> datetime | None:
    """The first instant after ``after`` at which ``schedule_active`` changes, or None
    if it never changes again (within the horizon: a little over a year of local days)."""
    state = schedule_active(schedule, after, tz)
    for candidate in _candidate_boundaries(schedule, after, tz, horizon_days):
        if schedule_active(schedule, candidate, tz) != state:
            return candidate
    return None


def schedule_phase(schedule: Schedule, at: datetime, tz: tzinfo) -> str:
    """``live`` (active at ``at``), ``scheduled`` (will be active later) or ``ended``."""
    if schedule_active(schedule, at, tz):
        return "live"
    return "scheduled" if schedule_next_boundary(schedule, at, tz) is not None else "ended"


def schedule_end(schedule: Schedule, at: datetime, tz: tzinfo) -> datetime | None:
    """When the stretch of activity around ``at`` ends by date: ``ends_at`` or the end of
    the current yearly occurrence, whichever is first (exclusive, UTC). Daily hours and
    weekdays are not counted: a sale "until 24 Dec" may still run only 09:00-17:00."""
    ends = [schedule.ends_at] if schedule.ends_at is not None else []
    if schedule.yearly is not None:
        occurrence = schedule.yearly.occurrence(at.astimezone(tz).date())
        if occurrence is not None:
            ends.append(local_instant(datetime.combine(occurrence[1] + timedelta(days=1), time(0)), tz))
    return min(ends) if ends else None


def until_label(end: datetime | None, at: datetime, tz: tzinfo) -> str:
    """`` until 24 Dec`` for an exclusive end at local midnight (the last full day),
    `` until 24 Dec 17:00`` otherwise; the year is added when it differs from ``at``'s.
    Empty when there is no end."""
    if end is None:
        return ""
    return _until_label(end, at.astimezone(tz).year, tz)


@lru_cache(maxsize=4096)  # compiled rules ask for the same few ends every minute
def _until_label(end: datetime, year: int, tz: tzinfo) -> str:
    local_end = end.astimezone(tz)
    if local_end.time() == time(0):
        shown = local_end.date() - timedelta(days=1)
        text = f"{shown.day} {shown:%b}"
    else:
        shown = local_end.date()
        text = f"{shown.day} {shown:%b} {local_end:%H:%M}"
    if shown.year != year:
        text += f" {shown.year}"
    return f" until {text}"


# --- Seasonal windows ---------------------------------------------------------------


@dataclass(frozen=True)
class SeasonalWindow:
    """A one-off window (``first_day`` to ``last_day``) or a yearly one (``yearly``), days included."""

    first_day: date | None = None
    last_day: date | None = None
    yearly: YearlyWindow | None = None

    def occurrence(self, day: date) -> tuple[date, date] | None:
        if self.yearly is not None:
            return self.yearly.occurrence(day)
        if self.first_day is not None and self.last_day is not None and self.first_day <= day <= self.last_day:
            return self.first_day, self.last_day
        return None


def seasonal_bounds(window: SeasonalWindow, at: datetime, tz: tzinfo) -> tuple[datetime, datetime] | None:
    """The (start, exclusive end) instants of the occurrence containing ``at``, or None."""
    occurrence = window.occurrence(at.astimezone(tz).date())
    if occurrence is None:
        return None
    start = local_instant(datetime.combine(occurrence[0], time(0)), tz)
    end = local_instant(datetime.combine(occurrence[1] + timedelta(days=1), time(0)), tz)
    return start, end


def seasonal_multiplier(
    window: SeasonalWindow, factor: float, ramp_up_days: int, ramp_down_days: int, at: datetime, tz: tzinfo
) -> float:
    """The score multiplier of a seasonal boost at ``at``: 1.0 outside the window; inside
    it rises linearly from 1.0 at the window's start to ``factor`` after ``ramp_up_days``,
    stays there, and falls back to 1.0 over the last ``ramp_down_days`` (ramps lie inside
    the window; elapsed time is real time, so a 23-hour DST day counts as 23 hours)."""
    bounds = seasonal_bounds(window, at, tz)
    if bounds is None:
        return 1.0
    start, end = bounds
    day = 86400.0
    weight = 1.0
    if ramp_up_days > 0:
        weight = min(weight, (at - start).total_seconds() / (ramp_up_days * day))
    if ramp_down_days > 0:
        weight = min(weight, (end - at).total_seconds() / (ramp_down_days * day))
    weight = max(0.0, min(1.0, weight))
    return 1.0 + (factor - 1.0) * weight

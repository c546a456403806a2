"""Time buckets of the rollups: hours and days on the shop's wall clock.

A bucket is identified by its first instant, stored in UTC. Hours are *local* hours, so
that local days are exact unions of hours in every time zone (India's +05:30 included):
the hour of an instant is that instant's local time floored to the hour. A day is a
local date; its start is local midnight (or, on the rare days whose midnight the clocks
skip, the first instant of that date). An hour belongs to the day of its local date,
which is the same as ``day_start(d) <= hour < day_start(d + 1)``.

During a DST fall-back the repeated local hour is two buckets (two UTC instants), and
the day has 25 of them; on spring-forward it has 23.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

HOUR = timedelta(hours=1)


def hour_start(instant: datetime, zone: tzinfo) -> datetime:
    """The start (UTC) of the local hour that holds ``instant`` (aware)."""
    local = instant.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def local_date(instant: datetime, zone: tzinfo) -> date:
    return instant.astimezone(zone).date()


def day_start(day: date, zone: tzinfo) -> datetime:
    """The first instant (UTC) of local date ``day``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_range(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of local date ``day`` in UTC."""
    return day_start(day, zone), day_start(day + timedelta(days=1), zone)


def hours_of_utc_hours(utc_hours: Iterable[datetime], zone: tzinfo) -> set[datetime]:
    """The local-hour buckets that overlap the given whole UTC hours.

    With a whole-hour offset a UTC hour is exactly one local hour; with a half-hour offset
    it overlaps two. Used to turn the database's cheap ``date_trunc('hour', ts)`` (UTC)
    into the buckets an event may fall in, without any time-zone arithmetic in SQL.
    """
    buckets: set[datetime] = set()
    for utc_hour in utc_hours:
        start = utc_hour.astimezone(UTC)
        buckets.add(hour_start(start, zone))
        buckets.add(hour_start(start + HOUR - timedelta(microseconds=1), zone))
    return buckets


def hours_between(start: datetime, end: datetime, zone: tzinfo) -> list[datetime]:
    """Every hour bucket that starts in ``[start, end)``, ascending (``start`` is floored)."""
    hours = []
    current = hour_start(start, zone)
    while current < end:
        hours.append(current)
        current = _next_hour(current, zone)
    return hours


def _next_hour(bucket: datetime, zone: tzinfo) -> datetime:
    """The bucket after ``bucket`` (local hours are an hour long in zones whose offsets
    change by whole hours, which is every zone but Lord Howe Island's)."""
    return hour_start(bucket + HOUR, zone)

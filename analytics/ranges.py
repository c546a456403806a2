"""Date ranges of metrics queries, shared by the API and the console.

``from`` and ``to`` are local dates of the shop (``to`` inclusive) or instants. With day
granularity an instant stands for its local date; with hour granularity a date stands
for its whole day and an instant for the hour that holds it. Ranges are capped so that
a query reads a bounded number of rollup rows.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.buckets import HOUR, day_start, hour_start, local_date
from analytics.models import Period
from catalog.models import Shop

DEFAULT_DAYS = 30
DEFAULT_HOURS = 48
MAX_DAYS = 400
MAX_HOURS = 31 * 24


class RangeError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class MetricsRange:
    start: datetime
    end: datetime
    granularity: str


def parse_moment(text: str, shop: Shop, field: str) -> date | datetime:
    """``YYYY-MM-DD`` (a local date) or an ISO 8601 instant (without an offset: the shop's
    local time)."""
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        raise RangeError(field, "Enter a date (YYYY-MM-DD) or a date and time (ISO 8601).")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(shop.timezone))
    return moment


def metrics_range(
    shop: Shop,
    first: date | datetime | None,
    last: date | datetime | None,
    granularity: str,
    now: datetime | None = None,
) -> MetricsRange:
    """The ``[start, end)`` bucket range for ``first``..``last`` (defaults: the last 30
    days, or the last 48 hours). Raises RangeError naming the field at fault."""
    if granularity not in Period.values:
        raise RangeError("granularity", f"Choose one of {', '.join(Period.values)}.")
    zone = zoneinfo.ZoneInfo(shop.timezone)
    now = now or timezone.now()
    if granularity == Period.DAY:
        last_day = _as_date(last, zone) if last is not None else local_date(now, zone)
        first_day = _as_date(first, zone) if first is not None else last_day - timedelta(days=DEFAULT_DAYS - 1)
        if first_day > last_day:
            raise RangeError("from", "The start must not be after the end.")
        if (last_day - first_day).days + 1 > MAX_DAYS:
            raise RangeError("to", f"Ask for at most {MAX_DAYS} days at once.")
        return MetricsRange(day_start(first_day, zone), day_start(last_day + timedelta(days=1), zone), granularity)
    end = _hour_end(last, zone) if last is not None else hour_start(now, zone) + HOUR
    start = _hour_start(first, zone) if first is not None else end - DEFAULT_HOURS * HOUR
    if start >= end:
        raise RangeError("from", "The start must not be after the end.")
    if end - start > MAX_HOURS * HOUR:
        raise RangeError("to", f"Ask for at most {MAX_HOURS // 24} days of hours at once; use days for longer.")
    return MetricsRange(start, end, granularity)


def _as_date(moment: date | datetime, zone: zoneinfo.ZoneInfo) -> date:
    return local_date(moment, zone) if isinstance(moment, datetime) else moment


def _hour_start(moment: date | datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return hour_start(moment, zone) if isinstance(moment, datetime) else day_start(moment, zone)


def _hour_end(moment: date | datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    if isinstance(moment, datetime):
        return hour_start(moment, zone) + HOUR
    return day_start(moment + timedelta(days=1), zone)

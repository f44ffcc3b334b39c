"""Times as people type or pick them in a front-end: a date alone is a whole day.

`govern audit list --until 2024-05-01` and the dashboard's date range both mean "up to the end of
that day"; the rule lives here so that neither front-end carries it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from governance.errors import InvalidInput
from governance.service.base import parse_time

_DATE_ALONE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_since(value: str | date | datetime | None, *, what: str = "since") -> datetime | None:
    """The naive UTC start of a period: a date alone means the first moment of that day, anything else
    is read as `parse_time` reads it. Raises InvalidInput for text that is no time."""
    return _parse(value, time.min, what)


def parse_until(value: str | date | datetime | None, *, what: str = "until") -> datetime | None:
    """The naive UTC end of a period, inclusive: a date alone (a `date`, or text such as 2024-05-01) means
    the last microsecond of that day; a time (text with a time part, or a `datetime`) is kept as given.
    Raises InvalidInput for text that is no time.

        parse_until("2024-05-01")           # datetime(2024, 5, 1, 23, 59, 59, 999999)
        parse_until("2024-05-01T12:00:00Z")  # datetime(2024, 5, 1, 12, 0)
    """
    return _parse(value, time.max, what)


def _parse(value: str | date | datetime | None, moment: time, what: str) -> datetime | None:
    if isinstance(value, str) and _DATE_ALONE.fullmatch(value.strip()):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidInput(f"{what} {value!r} is not a date such as 2024-05-01.") from exc
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, moment)
    return parse_time(value, what=what)

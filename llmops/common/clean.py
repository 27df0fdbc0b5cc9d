"""Cleaners for input fields that reach a service: each returns the clean value or raises
`InvalidInput` naming the field (a 400 with `details.fields[<field>]`), never a 500.

- `text`: a string (None is ""), stripped, refused text (NUL, unpaired surrogates) and
  over-long text named; `required`, `one_word`, `too_large` (413 past the limit).
- `count`: a whole number in a range (a bool is not a number); "" and None are None.
- `money`: a `Decimal` amount in a range, quantized; "" and None are None.
- `timestamp`: an aware date-time in UTC from ISO 8601 text or a `datetime`, within
  sensible bounds (not before 1970, not in the future, a real UTC offset).
- `day`: a `date` from ISO 8601 text (YYYY-MM-DD) or a `date`.
- `words`: a list of short strings (a comma-separated string is split), duplicates
  dropped, optionally from a fixed set of choices.
- `url`: an http(s) URL (optionally a path on this site too).

Services pass the field name the client used, so the error points at what to fix."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .errors import InvalidInput, TooLarge
from .hygiene import text_problem

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_UTC_OFFSET = timedelta(hours=14)  # the widest real offset; the databases refuse more
CLOCK_SKEW = timedelta(minutes=5)  # "in the future" allows a client clock a little ahead
TIMESTAMP_EXAMPLE = "an ISO 8601 date-time, e.g. 2026-01-31T10:00:00Z"
DAY_EXAMPLE = "a date like 2026-12-31"

_EMPTY = (None, "")


def text(
    value: Any,
    *,
    field: str,
    max_length: int,
    required: bool = False,
    one_word: bool = False,
    too_large: bool = False,
) -> str:
    """Stripped text of at most `max_length` characters (None is ""). `required` refuses
    empty text, `one_word` any whitespace inside; `too_large` makes over-long text a 413
    (a body-sized field) instead of a 400."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", field=field)
    problem = text_problem(value)
    if problem:
        raise InvalidInput(f"{field} {problem}.", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} is required.", field=field)
    if len(value) > max_length:
        message = f"{field} is {len(value)} characters; at most {max_length}."
        if too_large:
            raise TooLarge(message, details={"field": field, "limit": max_length})
        raise InvalidInput(message, field=field)
    if one_word and any(c.isspace() for c in value):
        raise InvalidInput(f"{field} must be one word (no spaces).", field=field)
    return value


def count(
    value: Any,
    *,
    field: str,
    min_value: int = 0,
    max_value: int = 2_000_000_000,
    unit: str = "",
) -> int | None:
    """A whole number from `min_value` to `max_value` (an int, or text of one); "" and
    None are None. `unit` ("tokens") goes into the message."""
    if value in _EMPTY:
        return None
    what = f"a whole number of {unit}" if unit else "a whole number"
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise InvalidInput(f"{field} must be {what}.", field=field)
    try:
        result = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{field} must be {what}.", field=field)
    if not min_value <= result <= max_value:
        raise InvalidInput(
            f"{field} must be {what} from {min_value:,} to {max_value:,}.", field=field
        )
    return result


def money(
    value: Any,
    *,
    field: str,
    below: Decimal | int = Decimal("1e12"),
    places: int = 2,
    unit: str = "",
) -> Decimal | None:
    """A non-negative `Decimal` below `below`, quantized to `places` decimals; "" and None
    are None. `unit` ("USD per million tokens") goes into the message."""
    if value in _EMPTY:
        return None
    what = f"a number ({unit})" if unit else "a number"
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be {what}.", field=field)
    try:
        result = Decimal(value.strip() if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(f"{field} must be {what}.", field=field)
    if not result.is_finite() or result < 0 or result >= Decimal(below):
        raise InvalidInput(f"{field} must be from 0 to below {Decimal(below):,}.", field=field)
    return result.quantize(Decimal(1).scaleb(-places))


def timestamp(value: Any, *, field: str, future: bool = False) -> datetime | None:
    """An aware date-time in UTC: not before 1970, not in the future (unless `future`;
    a few minutes of clock skew allowed), a UTC offset within +-14:00. Naive values are in
    the current time zone. "" and None are None."""
    if value in _EMPTY:
        return None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip()) if not text_problem(value) else None
        except (ValueError, OverflowError):  # e.g. month 13, or an offset of a day or more
            parsed = None
        if parsed is None:
            raise InvalidInput(f"{field} must be {TIMESTAMP_EXAMPLE}.", field=field)
        value = parsed
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a date-time.", field=field)
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_current_timezone())
        offset = value.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise InvalidInput(
                f"{field} has a UTC offset beyond +-14:00; use {TIMESTAMP_EXAMPLE}.", field=field
            )
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field} is out of range; use {TIMESTAMP_EXAMPLE}.", field=field)
    if value < EARLIEST_TIME:
        raise InvalidInput(f"{field} is before 1970; use {TIMESTAMP_EXAMPLE}.", field=field)
    if not future and value > timezone.now() + CLOCK_SKEW:
        raise InvalidInput(f"{field} is in the future.", field=field)
    return value


def day(value: Any, *, field: str) -> date | None:
    """A calendar date from YYYY-MM-DD text or a `date` (a `datetime` gives its date);
    "" and None are None."""
    if value in _EMPTY:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    parsed = None
    if isinstance(value, str) and not text_problem(value):
        try:
            parsed = parse_date(value.strip())
        except ValueError:  # e.g. 2026-02-30
            parsed = None
    if parsed is None:
        raise InvalidInput(f"{field} must be {DAY_EXAMPLE}.", field=field)
    return parsed


def words(
    value: Any,
    *,
    field: str,
    max_length: int = 100,
    choices: Iterable[str] | None = None,
) -> list[str]:
    """A list of strings (or one comma-separated string), stripped, empty ones and
    duplicates dropped, each cut to `max_length`; with `choices`, each must be one of them.
    "" and None are []."""
    if value in _EMPTY:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{field} must be a list of strings.", field=field)
    for item in value:
        problem = text_problem(item)
        if problem:
            raise InvalidInput(f"{field} {problem}.", field=field)
    items = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if choices is not None:
        choices = list(choices)
        bad = [v for v in items if v not in choices]
        if bad:
            raise InvalidInput(
                f"Unknown {field} '{bad[0]}'; use {', '.join(choices)}.", field=field
            )
    return [v[:max_length] for v in items]


def url(value: Any, *, field: str, max_length: int = 500, paths: bool = False) -> str:
    """An http(s) URL, or "" (None is ""); with `paths`, a path on this site ("/...") too."""
    value = text(value, field=field, max_length=max_length)
    starts = ("https://", "http://", "/") if paths else ("https://", "http://")
    if value and (not value.startswith(starts) or value.startswith("//")):
        where = "an http(s) URL or a path on this site" if paths else "an http(s) URL"
        raise InvalidInput(f"{field} must be {where}.", field=field)
    return value

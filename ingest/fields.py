"""Field rules of the event contract: each checker takes a JSON value and returns the stored value.

A checker raises `Invalid` with a reason that names the rule and the value it got; the decoder
prefixes the field name. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

Checker = Callable[[Any], Any]

#: Keep at least the first 4 KiB of free text (the contract); we keep 64 KiB.
MAX_TEXT = 64 * 1024


class Invalid(ValueError):
    """A value broke a rule of the contract; the message says which and what came."""


#: Largest integer a stored int64 column holds; an int32 column says its own.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _spec(check: Checker, kind: str, **args: Any) -> Checker:
    """Tag a checker with its rule, so the batch decoder can apply the same rule to a column."""
    check.spec = (kind, args)  # type: ignore[attr-defined]
    return check


def shown(value: Any) -> str:
    """A value as the reason quotes it: JSON text, cut short."""
    text = orjson.dumps(value).decode() if value is not ... else "nothing"
    return text if len(text) <= 60 else text[:57] + "..."


def text(value: Any) -> str:
    if type(value) is not str:
        raise Invalid(f"must be a string, got {shown(value)}")
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT]


def name(value: Any) -> str:
    if type(value) is not str or not value:
        raise Invalid(f"must be a non-empty string, got {shown(value)}")
    return value


def bounded_text(low: int, high: int) -> Checker:
    def check(value: Any) -> str:
        if type(value) is not str or not low <= len(value) <= high:
            raise Invalid(f"must be a string of {low}-{high} characters, got {shown(value)}")
        return value

    return _spec(check, "bounded_text", low=low, high=high)


def integer(low: int, high: int = INT64_MAX) -> Checker:
    def check(value: Any) -> int:
        if type(value) is not int or value < low:
            raise Invalid(f"must be an integer >= {low}, got {shown(value)}")
        if value > high:
            raise Invalid(f"must be an integer <= {high}, got {shown(value)}")
        return value

    return _spec(check, "integer", low=low, high=high)


def number(low: float | None = None, high: float | None = None, open_low: bool = False) -> Checker:
    if low is None:
        rule = "a number"
    elif high is not None:
        rule = f"a number in [{low:g}, {high:g}]"
    else:
        rule = f"a number {'>' if open_low else '>='} {low:g}"

    def check(value: Any) -> float:
        kind = type(value)
        if kind is not float and kind is not int:
            raise Invalid(f"must be {rule}, got {shown(value)}")
        if low is not None and (value < low or (open_low and value == low)):
            raise Invalid(f"must be {rule}, got {shown(value)}")
        if high is not None and value > high:
            raise Invalid(f"must be {rule}, got {shown(value)}")
        return float(value)

    return _spec(check, "number", low=low, high=high, open_low=open_low)


def boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise Invalid(f"must be true or false, got {shown(value)}")
    return value


def one_of(*choices: str) -> Checker:
    allowed = frozenset(choices)

    def check(value: Any) -> str:
        if type(value) is not str or value not in allowed:
            raise Invalid(f"must be one of {', '.join(choices)}, got {shown(value)}")
        return value

    return _spec(check, "one_of", choices=choices)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
_NO_OFFSET = re.compile(r"\d{4}-\d\d-\d\d([Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?)?$")


def timestamp(value: Any) -> int:
    """An RFC 3339 timestamp with an offset, as microseconds since the epoch (UTC)."""
    if type(value) is not str:
        raise Invalid(f"must be an RFC 3339 timestamp with offset, got {shown(value)}")
    shape = _RFC3339.match(value)
    if shape is None:
        if _NO_OFFSET.match(value):
            raise Invalid(f"must be a timestamp with an offset (Z or +hh:mm), got {shown(value)}")
        raise Invalid(f"must be an RFC 3339 timestamp with offset, got {shown(value)}")
    try:
        parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:
        raise Invalid(f"must be a valid RFC 3339 timestamp, got {shown(value)}") from None
    return (parsed - _EPOCH) // _MICROSECOND


def scores(standard: tuple[str, ...]) -> Checker:
    """quality_scores: name -> number; the standard ones in [0, 1]."""
    unit = number(0, 1)
    any_number = number()

    def check(value: Any) -> dict[str, float]:
        if type(value) is not dict:
            raise Invalid(f"must be an object of name -> number, got {shown(value)}")
        out = {}
        for key, score in value.items():
            try:
                out[key] = unit(score) if key in standard else any_number(score)
            except Invalid as e:
                raise Invalid(f"{key}: {e}") from None
        return out

    return _spec(check, "scores", standard=standard)


def params(value: Any) -> dict[str, Any]:
    """params: name -> number, string or boolean."""
    if type(value) is not dict:
        raise Invalid(f"must be an object of name -> number, string or boolean, got {shown(value)}")
    for key, v in value.items():
        if type(v) not in (int, float, str, bool):
            raise Invalid(f"{key}: must be a number, string or boolean, got {shown(v)}")
    return value


_STAGE_FIELDS = frozenset(("name", "duration_ms", "gpu_mem_peak_mb", "cpu_mem_peak_mb"))
_stage_number = number(0)


def stages(value: Any) -> list[dict[str, Any]]:
    """pipeline_stages: a list of {name, duration_ms, gpu_mem_peak_mb?, cpu_mem_peak_mb?}."""
    if type(value) is not list:
        raise Invalid(f"must be an array of stage objects, got {shown(value)}")
    out = []
    for i, stage in enumerate(value):
        if type(stage) is not dict:
            raise Invalid(f"[{i}]: must be an object, got {shown(stage)}")
        row = dict.fromkeys(_STAGE_FIELDS)
        row["extra"] = None
        unknown = None
        for key, v in stage.items():
            if key not in _STAGE_FIELDS:
                unknown = unknown or {}
                unknown[key] = v
            elif v is not None:
                try:
                    row[key] = name(v) if key == "name" else _stage_number(v)
                except Invalid as e:
                    raise Invalid(f"[{i}].{key}: {e}") from None
        for key in ("name", "duration_ms"):
            if row[key] is None:
                raise Invalid(f"[{i}].{key}: required, got {shown(stage.get(key, ...))}")
        if unknown:
            row["extra"] = orjson.dumps(unknown).decode()
        out.append(row)
    return out


def number_text(value: float) -> str:
    """A number as params text: 30 and 30.0 both read "30" (JSON does not tell them apart)."""
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value) if type(value) is int else repr(value)


def day_of(micros: int) -> date:
    """The UTC date of a timestamp in microseconds since the epoch."""
    return date.fromordinal(_EPOCH_ORDINAL + micros // 86_400_000_000)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

_spec(text, "text")
_spec(name, "name")
_spec(boolean, "boolean")
_spec(timestamp, "timestamp")
_spec(params, "params")
_spec(stages, "stages")

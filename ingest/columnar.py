"""Batch decoding: a flush's messages parsed at once by pyarrow.json, the contract's rules applied
to whole columns with pyarrow.compute.

The per-message decoder (`ingest.decode`) stays the reference. Every message this module cannot
prove valid (a parse error, a JSON null, an unknown field, a broken rule, a day beyond retention)
is handed back to it by position, and it gives the row or the rejection with its reason. The rows
both paths give are the same; tests/ingest/test_columnar.py checks it field by field.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ingest import fields as f
from ingest.decode import FUTURE_TOLERANCE, RULES, SCHEMA_VERSION, Rules
from lake.tables import JOB_FAILURES, JOB_STAGES, JOBS, STANDARD_SCORES, WORKER_SAMPLES, Table

#: Message position in the batch: orders the rows and finds their Kafka partition and offset.
POS = "_pos"

_STAGE = pa.struct(
    [
        ("name", pa.string()),
        ("duration_ms", pa.float64()),
        ("gpu_mem_peak_mb", pa.float64()),
        ("cpu_mem_peak_mb", pa.float64()),
    ]
)
_PARSE_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "name": pa.string(),
    "bounded_text": pa.string(),
    "one_of": pa.string(),
    "timestamp": pa.string(),  # parsed here, so a date or a missing offset is caught
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "scores": pa.struct([(s, pa.float64()) for s in STANDARD_SCORES]),
    "params": pa.struct([]),  # keys vary: pyarrow infers them
    "stages": pa.list_(_STAGE),
}
# Strict RFC 3339 with at most microseconds; anything looser is the reference decoder's call.
_TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"
_TS = pa.timestamp("us", tz="UTC")
#: Messages parsed per pyarrow.json call (about 2.5 MB of demo events).
_PART = 16384
_DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def _union_schema() -> pa.Schema:
    types: dict[str, pa.DataType] = {"schema_version": pa.int64(), "event_type": pa.string()}
    for _, rules in RULES.values():
        for name, (check, _) in rules.items():
            kind = check.spec[0]  # type: ignore[attr-defined]
            if types.setdefault(name, _PARSE_TYPES[kind]) != _PARSE_TYPES[kind]:
                raise TypeError(f"{name}: two event types parse it differently")
    return pa.schema(list(types.items()))


SCHEMA = _union_schema()
_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="infer")


@dataclass
class Decoded:
    """The rows proved valid, per lake table (with a `_pos` column), and the positions left."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    slow: list[int] = field(default_factory=list)

    def add(self, table: Table, rows: pa.Table) -> None:
        if rows.num_rows:
            self.tables.setdefault(table.name, []).append(rows)


@dataclass
class Parsed:
    """Messages screened and parsed by pyarrow.json, by position: what is left is the rules.

    Parsing is the costliest step and knows nothing of time or retention, so ingest runs it in
    the consumer's process (`ingest.runner`) and the rest in the writer's. The messages travel
    with it joined in one buffer (`data`, one newline between them), which pickles several times
    faster than as many bytes objects; `value` gives one back.
    """

    pieces: list[tuple[np.ndarray, pa.Table]] = field(default_factory=list)
    slow: list[int] = field(default_factory=list)
    data: bytes = b""
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Bytes per message; -1 for a message without a value (None).
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def value(self, pos: int) -> bytes | None:
        size = int(self.sizes[pos])
        if size < 0:
            return None
        start = int(self.starts[pos])
        return self.data[start : start + size]

    def bytes_between(self, first: int, end: int) -> int:
        """The bytes of the values of messages `first` to `end` (excluded)."""
        return int(np.maximum(self.sizes[first:end], 0).sum())

    def __getstate__(self) -> dict[str, Any]:
        # The tables travel as one Arrow IPC stream each: about 5x cheaper to write than
        # pickling their buffers one by one, and read back without a copy.
        state = dict(self.__dict__)
        state["pieces"] = [(positions, _ipc(table)) for positions, table in self.pieces]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["pieces"] = [
            (positions, pa.ipc.open_stream(stream).read_all())
            for positions, stream in state["pieces"]
        ]
        self.__dict__.update(state)


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def decode_batch(values: Sequence[bytes | None], now: datetime, oldest_day: date | None) -> Decoded:
    """Decode every value it can prove valid; the others' positions go to `slow`."""
    return decode_parsed(parse_batch(values), now, oldest_day)


def parse_batch(values: Sequence[bytes | None]) -> Parsed:
    """Parse every value that passes the screens; the others' positions go to `slow`."""
    if not values:
        return Parsed()
    blobs = [v or b"" for v in values]
    data = b"\n".join(blobs)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    starts = np.zeros(len(blobs), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    # Cheap screens for what pyarrow reads differently from the contract's JSON: an empty or
    # whitespace-led value, and nulls where null and absent differ. They run over the joined
    # values at once, and only the few messages a token was found in are looked at. (NaN and
    # Infinity, which pyarrow reads as numbers, are looked for in the parsed numbers instead:
    # `_non_finite_rows`.)
    ok = (lengths > 0) & (lengths <= f.MAX_TEXT)
    text = np.frombuffer(data, dtype=np.uint8)
    ok[ok] = (text[starts[ok]] == ord("{")) & (text[starts[ok] + lengths[ok] - 1] == ord("}"))
    for i in _holding(data, b"null", starts):
        if ok[i] and not _nulls_read_as_absent(blobs[i]):
            ok[i] = False
    # Raw line breaks in JSON are whitespace (inside strings they must be escaped), but one
    # would split a message in two lines: those few messages get spaces instead.
    broken = set(_holding(data, b"\r", starts))
    if data.count(b"\n") > len(blobs) - 1:
        inner = np.setdiff1d(np.flatnonzero(text == ord("\n")), starts[1:] - 1)
        broken.update(np.unique(np.searchsorted(starts, inner, side="right") - 1).tolist())
    if broken:
        lines = list(blobs)
        for i in broken:
            lines[i] = blobs[i].replace(b"\n", b" ").replace(b"\r", b" ")
        joined = b"\n".join(lines)
    else:
        joined = data
    sizes = lengths.copy()
    sizes[[i for i, v in enumerate(values) if v is None]] = -1
    out = Parsed(slow=np.flatnonzero(~ok).tolist(), data=data, starts=starts, sizes=sizes)
    out.pieces = _parse_pieces(_Lines(joined, starts, lengths), np.flatnonzero(ok), out.slow)
    return out


@dataclass(frozen=True)
class _Lines:
    """Messages joined with newlines, without line breaks of their own: what pyarrow.json reads."""

    data: bytes
    starts: np.ndarray
    sizes: np.ndarray

    def text(self, positions: np.ndarray) -> pa.Buffer:
        """The lines at `positions`, joined: a view of `data` when they are consecutive."""
        first, last = int(positions[0]), int(positions[-1])
        end = int(self.starts[last] + self.sizes[last])
        if last - first == len(positions) - 1:
            return pa.py_buffer(self.data)[int(self.starts[first]) : end]
        return pa.py_buffer(
            b"\n".join(
                [self.data[self.starts[i] : self.starts[i] + self.sizes[i]] for i in positions]
            )
        )


def _holding(data: bytes, token: bytes, starts: np.ndarray) -> list[int]:
    """Positions of the messages (joined with newlines, starting at `starts`) holding `token`."""
    found = []
    at = data.find(token)
    while at >= 0:
        found.append(at)
        at = data.find(token, at + 1)
    if not found:
        return []
    return np.unique(np.searchsorted(starts, found, side="right") - 1).tolist()


def decode_parsed(parsed: Parsed, now: datetime, oldest_day: date | None) -> Decoded:
    """Apply the contract's rules to parsed messages (see `decode_batch`)."""
    out = Decoded(slow=list(parsed.slow))
    limits = _Limits(now, oldest_day)
    for positions, table in parsed.pieces:
        _decode_piece(table, positions, limits, out)
    out.slow.sort()
    return out


def _nulls_read_as_absent(value: bytes) -> bool:
    """Whether every null in the message is a known top-level field (which reads as absent).

    Once parsed, a null and an absent field look alike; the reference decoder keeps a null
    unknown field in `extra` and refuses a null param, score or stage field.
    """
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    etype = doc.get("event_type") if type(doc) is dict else None
    rules = RULES.get(etype) if type(etype) is str else None
    if rules is None:
        return False
    known = rules[1]
    for key, item in doc.items():
        if item is None:
            if key not in known:
                return False
        elif type(item) is dict:
            if None in item.values():
                return False
        elif type(item) is list and any(type(s) is dict and None in s.values() for s in item):
            return False
    return True


@dataclass(frozen=True)
class _Limits:
    now: datetime
    oldest_day: date | None

    def keep(self, occurred: pa.Array) -> pa.Array:
        """Rows neither too far in the future nor older than the retention floor."""
        latest = pa.scalar(self.now + FUTURE_TOLERANCE, _TS)
        ok = pc.less_equal(occurred, latest)
        if self.oldest_day is not None:
            floor = pa.scalar((self.oldest_day - _EPOCH).days * _DAY_US, pa.int64())
            ok = pc.and_(ok, pc.greater_equal(occurred.cast(pa.int64()), floor))
        return ok


def _parse(lines: _Lines, positions: np.ndarray) -> pa.Table | None:
    longest = int(lines.sizes[positions].max())
    options = pj.ReadOptions(use_threads=False, block_size=max(1 << 22, 2 * longest + 2))
    try:
        parsed = pj.read_json(
            pa.BufferReader(lines.text(positions)), read_options=options, parse_options=_PARSE
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # Two objects on one line would shift every row after them.
    return parsed if parsed.num_rows == len(positions) else None


def _parse_pieces(
    lines: _Lines, positions: np.ndarray, slow: list[int]
) -> list[tuple[np.ndarray, pa.Table]]:
    """Parse `positions`; a part that fails is halved until the bad messages stand alone.

    Parts start at `_PART` messages, so a bad message costs a re-parse of a few thousand
    messages, not of the whole flush.
    """
    pieces = []
    todo = [positions[i : i + _PART] for i in range(0, len(positions), _PART)][::-1]
    while todo:
        part = todo.pop()
        parsed = _parse(lines, part)
        if parsed is not None:
            odd = _non_finite_rows(parsed)
            if odd.any():
                slow.extend(part[odd].tolist())
                parsed, part = parsed.filter(pa.array(~odd)), part[~odd]
            if len(part):
                pieces.append((part.astype(np.int64), parsed))
        elif len(part) <= 8:
            slow.extend(part.tolist())
        else:
            half = len(part) // 2
            todo += [part[half:], part[:half]]
    return pieces


def _non_finite_rows(parsed: pa.Table) -> np.ndarray:
    """Per row, whether any number in it, however deep, is NaN or infinite.

    pyarrow reads the literals NaN and Infinity, which JSON does not have (nor a number too
    large for a double): such a message is the reference decoder's to refuse. Only a floating
    column can hold one; anything else fails to parse.
    """
    odd = np.zeros(parsed.num_rows, dtype=bool)
    for column in parsed.columns:
        _mark_non_finite(column.combine_chunks(), None, odd)
    return odd


def _mark_non_finite(values: pa.Array, rows: np.ndarray | None, odd: np.ndarray) -> None:
    """Mark in `odd` the rows (`rows`: each value's row; None: value i is row i) of `values`
    that hold a non-finite number."""
    kind = values.type
    if pa.types.is_floating(kind):
        where = ~np.asarray(pc.fill_null(pc.is_finite(values), True))
        odd[where if rows is None else rows[where]] = True
    elif pa.types.is_struct(kind):
        for i in range(kind.num_fields):
            _mark_non_finite(values.field(i), rows, odd)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        parents = np.asarray(pc.list_parent_indices(values))
        _mark_non_finite(pc.list_flatten(values), parents if rows is None else rows[parents], odd)


def _decode_piece(parsed: pa.Table, positions: np.ndarray, limits: _Limits, out: Decoded) -> None:
    # A field the union schema does not know is an `extra`: the reference decoder keeps it.
    ok = _all_null([parsed.column(n) for n in parsed.column_names if n not in SCHEMA.names])
    ok = pc.and_(ok, pc.equal(parsed.column("schema_version"), SCHEMA_VERSION))
    etypes = parsed.column("event_type")
    handled = _bools(pc.and_(ok, pc.is_in(etypes, pa.array(list(RULES)))))
    # Where each field is present (fields null in every row left out): a row carrying a field
    # its event type does not have goes to the reference, and the rest is filtered without it.
    present = {
        name: _bools(pc.is_valid(col))
        for name in SCHEMA.names[2:]
        if (col := parsed.column(name)).null_count < parsed.num_rows
    }
    for etype, (table, rules) in RULES.items():
        mask = handled & _bools(pc.equal(etypes, etype))
        if not mask.any():
            continue
        stray = np.zeros(len(mask), dtype=bool)
        for name, where in present.items():
            if name not in rules:
                stray |= where
        own = [n for n in SCHEMA.names[2:] if n in rules]
        rows = parsed.select(own).filter(pa.array(mask))
        valid = _bools(pc.and_(_valid(rows, rules), limits.keep(_timestamps(rows, "occurred_at"))))
        valid &= ~stray[mask]
        if valid.all():
            _build(table, rows, pa.array(positions[mask]), out)
        elif valid.any():
            _build(table, rows.filter(pa.array(valid)), pa.array(positions[mask][valid]), out)
        out.slow.extend(positions[mask][~valid].tolist())
    out.slow.extend(positions[~handled].tolist())


def _bools(values: Any) -> np.ndarray:
    """A boolean Arrow column as a numpy mask, null counted as false."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _all_null(columns: list[pa.ChunkedArray]) -> pa.Array:
    n = len(columns[0]) if columns else 0
    ok = pa.array(np.ones(n, dtype=bool)) if columns else None
    for col in columns:
        ok = pc.and_(ok, pc.is_null(col))
    return ok if ok is not None else pa.scalar(True)


def _valid(rows: pa.Table, rules: Rules) -> pa.Array:
    """Rows that keep every rule of their event type (`rows`: that type's fields only).

    A column's null count is known without a kernel call: a field absent from every row, or
    present in every row, needs no per-row null handling.
    """
    n = rows.num_rows
    ok = None  # every row so far
    for name in rows.column_names:
        col = rows.column(name)
        nulls = col.null_count
        check, required = rules[name]
        if nulls == n:  # absent everywhere: fine unless required
            if required:
                return pa.array(np.zeros(n, dtype=bool))
            continue
        kind, args = check.spec  # type: ignore[attr-defined]
        rule = _column_rule(kind, args, col)
        if rule.null_count:
            rule = pc.fill_null(rule, False)
        if nulls:  # a missing field passes unless it is required
            rule = pc.if_else(pc.is_valid(col), rule, not required)
        ok = _and(ok, rule)
    return ok if ok is not None else pa.array(np.ones(n, dtype=bool))


def _and(ok: Any, rule: Any) -> Any:
    return rule if ok is None else pc.and_(ok, rule)


def _column_rule(kind: str, args: dict[str, Any], col: pa.ChunkedArray) -> Any:
    if kind in ("text", "name", "bounded_text"):
        length = pc.utf8_length(col)
        low = 1 if kind == "name" else args.get("low", 0)
        return pc.and_(pc.greater_equal(length, low), pc.less_equal(length, args.get("high", 1e18)))
    if kind == "one_of":
        return pc.is_in(col, pa.array(args["choices"]))
    if kind == "timestamp":
        parsed = _to_timestamps(col.combine_chunks())
        return pc.and_(pc.match_substring_regex(col, _TIMESTAMP), pc.is_valid(parsed))
    if kind == "integer":
        return pc.and_(pc.greater_equal(col, args["low"]), pc.less_equal(col, args["high"]))
    if kind == "number":
        return _number_rule(col, args["low"], args["high"], args["open_low"])
    if kind == "boolean":
        return pc.is_valid(col)  # pyarrow already refused anything but true and false
    if kind == "scores":
        return _scores_rule(col, args["standard"])
    if kind == "params":
        return _params_rule(col)
    if kind == "stages":
        return _stages_rule(col)
    raise AssertionError(kind)


def _number_rule(col: Any, low: float | None, high: float | None, open_low: bool) -> Any:
    ok = pc.invert(pc.is_nan(col))
    if low is not None:
        ok = pc.and_(ok, (pc.greater if open_low else pc.greater_equal)(col, low))
    if high is not None:
        ok = pc.and_(ok, pc.less_equal(col, high))
    return ok


def _children(col: pa.ChunkedArray) -> tuple[pa.StructArray, list[pa.Field]]:
    arr = col.combine_chunks()
    return arr, list(arr.type)


def _scores_rule(col: pa.ChunkedArray, standard: tuple[str, ...]) -> Any:
    arr, kids = _children(col)
    ok = pa.array(np.ones(len(arr), dtype=bool))
    for i, kid in enumerate(kids):
        values = arr.field(i)
        if not (pa.types.is_floating(kid.type) or pa.types.is_integer(kid.type)):
            ok = pc.and_(ok, pc.is_null(values))
            continue
        values = values.cast(pa.float64(), safe=False)
        rule = (
            _number_rule(values, 0, 1, False)
            if kid.name in standard
            else _number_rule(values, None, None, False)
        )
        ok = pc.and_(ok, pc.fill_null(rule, True))
    return ok


_PARAM_TYPES = (pa.int64(), pa.float64(), pa.string(), pa.bool_())


def _params_rule(col: pa.ChunkedArray) -> Any:
    arr, kids = _children(col)
    ok = pa.array(np.ones(len(arr), dtype=bool))
    for i, kid in enumerate(kids):
        if kid.type not in _PARAM_TYPES:
            ok = pc.and_(ok, pc.is_null(arr.field(i)))
    return ok


def _stages_rule(col: pa.ChunkedArray) -> Any:
    lists = col.combine_chunks()
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    bad = pc.invert(pc.is_valid(flat))
    for i, kid in enumerate(flat.type):
        values = flat.field(i)
        if kid.name == "name":
            rule = pc.greater_equal(pc.utf8_length(values), 1)
        elif kid.name in ("duration_ms", "gpu_mem_peak_mb", "cpu_mem_peak_mb"):
            rule = _number_rule(values, 0, None, False)
        else:  # an unknown stage field: the stage's `extra`
            rule = pc.is_null(values)
        required = kid.name in ("name", "duration_ms")
        rule = pc.fill_null(rule, not required)
        bad = pc.or_(bad, pc.invert(rule))
    bad_rows = np.unique(np.asarray(parents)[np.asarray(bad.fill_null(True))])
    ok = np.ones(len(lists), dtype=bool)
    ok[bad_rows] = False
    return pa.array(ok)


def _timestamps(rows: pa.Table, name: str) -> pa.Array:
    return _to_timestamps(rows.column(name).combine_chunks())


def _to_timestamps(col: pa.Array) -> pa.Array:
    """Text as UTC timestamps; an unparsable value is null (its row goes to the reference)."""
    try:
        return pc.cast(col, _TS)
    except pa.ArrowInvalid:
        pass
    # Text not shaped as RFC 3339 is refused by the rule anyway: null it, and cast the rest.
    shaped = pc.if_else(pc.match_substring_regex(col, _TIMESTAMP), col, pa.scalar(None, col.type))
    return _cast_or_null(shaped)


def _cast_or_null(col: pa.Array) -> pa.Array:
    """Cast text to timestamps, halving around what fails (February 30th) until it is alone."""
    try:
        return pc.cast(col, _TS)
    except pa.ArrowInvalid:
        if len(col) == 1:
            return pa.nulls(1, _TS)
        half = len(col) // 2
        return pa.concat_arrays([_cast_or_null(col.slice(0, half)), _cast_or_null(col.slice(half))])


def _build(table: Table, rows: pa.Table, pos: pa.Array, out: Decoded) -> None:
    """The stored columns of `table` (and job_stages rows) from rows that passed every rule."""
    columns: dict[str, Any] = {}
    present = set(rows.column_names)
    for col in table.schema:
        if col.name in present and col.name not in ("params", "quality_scores"):
            values = rows.column(col.name).combine_chunks()
            if pa.types.is_timestamp(col.type):
                values = _timestamps(rows, col.name)
            columns[col.name] = values.cast(col.type)
    n = rows.num_rows
    if table is JOBS or table is JOB_FAILURES:
        _job_columns(table, rows, columns)
    if table is WORKER_SAMPLES:
        columns["gpu_index"] = pc.fill_null(columns["gpu_index"], 0)
    arrays = [
        columns[c.name] if c.name in columns else pa.nulls(n, c.type)
        for c in table.schema
        if c.name not in ("kafka_partition", "kafka_offset", "ingested_at")
    ]
    names = [
        c for c in table.schema.names if c not in ("kafka_partition", "kafka_offset", "ingested_at")
    ]
    out.add(table, pa.Table.from_arrays([*arrays, pos], names=[*names, POS]))
    if table is JOBS or table is JOB_FAILURES:
        outcome = "completed" if table is JOBS else "failed"
        out.add(
            JOB_STAGES,
            _stage_rows(rows.column("pipeline_stages").combine_chunks(), columns, pos, outcome),
        )


def _job_columns(table: Table, rows: pa.Table, columns: dict[str, Any]) -> None:
    columns["attempt"] = pc.fill_null(columns["attempt"], 1)
    stages = rows.column("pipeline_stages").combine_chunks()
    columns["stage_count"] = pc.list_value_length(stages).cast(pa.int32())
    params = rows.column("params").combine_chunks()
    columns["params"], columns["params_num"] = _params_maps(params)
    if table is JOBS:
        derived = pc.divide(
            columns["total_gpu_time_ms"].cast(pa.float64()),
            columns["frame_count"].cast(pa.float64()),
        )
        columns["time_per_frame_ms"] = pc.coalesce(columns["time_per_frame_ms"], derived)
        scores = rows.column("quality_scores").combine_chunks()
        for name in STANDARD_SCORES:
            columns[name] = scores.field(name)
        numbers = [_as_number(scores.field(i)) for i in range(scores.type.num_fields)]
        columns["quality_scores"] = _map(scores, numbers, pa.float64())


def _as_number(values: pa.Array) -> pa.Array:
    """A numeric child as float64; any other child (null in every row kept) as nulls."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return values.cast(pa.float64(), safe=False)
    return pa.nulls(len(values), pa.float64())


def _params_maps(params: pa.StructArray) -> tuple[pa.Array, pa.Array]:
    texts, numbers = [], []
    for i, kid in enumerate(params.type):
        values = params.field(i)
        if kid.type == pa.string():
            texts.append(values)
        elif kid.type == pa.bool_():
            texts.append(pc.if_else(values, "true", "false"))
        elif kid.type == pa.int64():
            texts.append(values.cast(pa.string()))
        elif kid.type == pa.float64():
            texts.append(_float_texts(values))
        else:  # a nested value: never in a row kept (the rule sent it to the reference)
            texts.append(pa.nulls(len(values), pa.string()))
        numbers.append(_as_number(values))
    return _map(params, texts, pa.string()), _map(params, numbers, pa.float64())


def _float_texts(values: pa.Array) -> pa.Array:
    """Numbers as the reference decoder writes them (`fields.number_text`).

    Arrow's cast gives the same shortest digits in positional form; Python writes the rest
    itself: an exponent (Arrow's differs: 1e-7 against 1e-07), below 1e-4 (Python switches to
    an exponent there, Arrow later), from 2**53 (Python keeps ".0"), and zero ("-0").
    """
    text = pc.cast(values, pa.string())
    size = pc.abs(values)
    redo = pc.or_(
        pc.or_(pc.match_substring(text, "e"), pc.less(size, 1e-4)),
        pc.greater_equal(size, float(2**53)),
    )
    where = np.flatnonzero(_bools(redo))
    if not len(where):
        return text
    python = [f.number_text(v) for v in values.take(pa.array(where)).to_pylist()]
    out = np.asarray(text.to_pylist(), dtype=object)
    out[where] = python
    return pa.array(out, pa.string())


def _map(struct: pa.StructArray, children: list[pa.Array], item_type: pa.DataType) -> pa.Array:
    """A map per row from the struct's present children (keys in the struct's field order)."""
    n = len(struct)
    names = [kid.name for kid in struct.type]
    present = np.zeros((n, len(names)), dtype=bool)
    for j, values in enumerate(children):
        present[:, j] = np.asarray(values.is_valid())
    row_valid = np.asarray(struct.is_valid())
    present &= row_valid[:, None]
    rows_i, kids_j = np.nonzero(present)
    counts = present.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    keys = pa.array(np.asarray(names, dtype=object)[kids_j] if len(names) else [], pa.string())
    items = (
        pc.take(
            pa.concat_arrays([c.cast(item_type) for c in children]), pa.array(kids_j * n + rows_i)
        )
        if len(names)
        else pa.array([], item_type)
    )
    offsets_arr = pa.array(offsets, mask=np.concatenate([~row_valid, [False]]))
    return pa.MapArray.from_arrays(offsets_arr, keys, items, type=pa.map_(pa.string(), item_type))


def _stage_rows(stages: pa.ListArray, job: dict[str, Any], pos: pa.Array, outcome: str) -> pa.Table:
    lengths = np.asarray(pc.list_value_length(stages).fill_null(0))
    parents = pa.array(np.repeat(np.arange(len(stages)), lengths))
    starts = np.cumsum(lengths) - lengths
    index = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    flat = pc.list_flatten(stages)
    n = len(flat)
    columns = {
        "event_id": job["event_id"].take(parents),
        "occurred_at": job["occurred_at"].take(parents),
        "outcome": pa.array(np.full(n, outcome, dtype=object), pa.string()),
        "job_id": job["job_id"].take(parents),
        "attempt": job["attempt"].take(parents),
        "workflow_id": job["workflow_id"].take(parents),
        "worker_id": job["worker_id"].take(parents),
        "stage_index": pa.array(index, pa.int32()),
        "stage_name": flat.field("name"),
        "duration_ms": flat.field("duration_ms"),
        "gpu_mem_peak_mb": flat.field("gpu_mem_peak_mb"),
        "cpu_mem_peak_mb": flat.field("cpu_mem_peak_mb"),
        "extra": pa.nulls(n, pa.string()),
    }
    names = [c for c in JOB_STAGES.schema.names if c != "ingested_at"]
    return pa.Table.from_arrays(
        [columns[c].cast(JOB_STAGES.schema.field(c).type) for c in names] + [pos.take(parents)],
        names=[*names, POS],
    )


def prepare_process() -> None:
    """Arrow settings for a process that only ingests (the consumer's, the writer's).

    - The system allocator: mimalloc, Arrow's default, kept freed memory mapped; with the
      system's, the two processes peaked about 100 MB lower over a 1M-event backlog, as fast.
    - No pandas: pyarrow's first array imports it (about 32 MB and 0.3 s) only to ask whether
      its argument is a pandas object, and ingest never passes one. pyarrow is let to learn
      that it has none; code that converts to pandas later still imports it then (pyarrow
      tries again where pandas is required).
    """
    pa.set_memory_pool(pa.system_memory_pool())
    if "pandas" in sys.modules:
        return
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(blocker)


class _NoPandas(importlib.abc.MetaPathFinder):
    """An import finder under which `import pandas` fails."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError("pandas is left out of ingest", name=name)
        return None


def warm_up() -> None:
    """Decode one message, so that the JSON reader and the compute kernels initialise before
    the first chunk arrives (a worker does it while the consumer joins its group)."""
    sample = b'{"schema_version": 1, "event_type": "worker.sample"}'
    decode_batch([sample], datetime.now(UTC), None)

"""Binance USDT-M WebSocket message lines -> decoded messages, columnar: what every Binance
message reader shares (the per-kind readers in ws.py, the book in depth.py).

Reads lines in any of the shapes a recorder or vendor stores them:
- a Tardis replay line: `2024-01-01T00:00:00.1234567Z {"stream": ..., "data": {...}}`
  (any receive-time prefix before the JSON: ISO with `T` or a space, any fraction, or an
  epoch number whose unit is detected from its magnitude)
- the combined-stream envelope: `{"stream": "btcusdt@aggTrade", "data": {...}}`, optionally
  with the recorder's receive time as a top-level field (see RECV_FIELDS)
- the bare payload: `{"e": "aggTrade", ...}`
Each event type is decoded with its own fields (EVENTS), the whole file by polars in one pass
(no per-line Python). On the error path only, `replay_error` and `first_bad_line` find the
file and line to name.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.parsing import epoch_ns, from_epoch_ns

# Each event type a kind reads, decoded with its own fields (the same letter means different
# things: `a` is aggTrade's id but bookTicker's ask price): payload field -> (column, type).
_COMMON = {"E": ("E", pl.Int64), "s": ("s", pl.String)}  # event time (ms), symbol


_LEVELS = pl.List(pl.List(pl.String))


# The event name given to a REST depth snapshot (Tardis's channel name for it).
SNAPSHOT_EVENT = "depthSnapshot"


EVENTS: dict[str, dict[str, tuple[str, pl.DataType]]] = {
    "aggTrade": _COMMON | {
        "a": ("id", pl.Int64),  # aggregate trade id
        "p": ("p", pl.String), "q": ("q", pl.String),  # price, quantity
        "m": ("m", pl.Boolean),  # buyer is maker -> the aggressor SOLD
        "T": ("T", pl.Int64),  # trade time, ms
    },
    "trade": _COMMON | {
        "t": ("id", pl.Int64), "p": ("p", pl.String), "q": ("q", pl.String), "m": ("m", pl.Boolean),
        "X": ("X", pl.String),  # trade type (MARKET, or INSURANCE_FUND/ADL/NA: left out)
        "T": ("T", pl.Int64),
    },
    "markPriceUpdate": _COMMON | {
        "p": ("p", pl.String),  # mark price
        "i": ("i", pl.String),  # index price
        "r": ("r", pl.String),  # funding rate that settles at T
        "T": ("T", pl.Int64),  # next funding time, ms
    },
    "bookTicker": _COMMON | {
        "u": ("update_id", pl.Int64),
        "b": ("bid_price", pl.String), "B": ("bid_size", pl.String),
        "a": ("ask_price", pl.String), "A": ("ask_size", pl.String),
        "T": ("T", pl.Int64),  # transaction time, ms
    },
    # The diff depth stream (`<symbol>@depth`): levels whose size changed, as absolute sizes.
    "depthUpdate": _COMMON | {
        "T": ("T", pl.Int64),
        "U": ("first_id", pl.Int64),  # first update id in the event
        "u": ("update_id", pl.Int64),  # final update id in the event
        "pu": ("prev_id", pl.Int64),  # final update id of the previous event (`u` before)
        "b": ("bids", _LEVELS), "a": ("asks", _LEVELS),  # [[price, qty], ...]; qty "0" deletes
    },
    # A REST depth snapshot (GET /fapi/v1/depth): Tardis's `depthSnapshot` channel, or a
    # recorder's snapshot line. It has no `e`: a line with `lastUpdateId` is one (SNAPSHOT_EVENT).
    SNAPSHOT_EVENT: {
        "E": ("E", pl.Int64), "T": ("T", pl.Int64), "s": ("s", pl.String),
        "lastUpdateId": ("update_id", pl.Int64),
        "bids": ("bids", _LEVELS), "asks": ("asks", _LEVELS),
    },
}  # fmt: skip


# The events each kind reads. Other event types (kline, forceOrder, ...) are counted per type
# and skipped, never decoded.
DEPTH_EVENTS = ("depthUpdate", SNAPSHOT_EVENT)


# Decoded only when the book is asked for (their level lists are most of a recording's bytes):
# otherwise counted as event types no kind reads, as before.
LIGHT_EVENTS = tuple(e for e in EVENTS if e not in DEPTH_EVENTS)


# Top-level fields a recorder may add with the local receive time (epoch number or ISO text).
RECV_FIELDS = ("local_timestamp", "recv_ts", "recv_time", "receive_time", "received_at", "receipt_timestamp")


# The event type: the first "e" key (the envelope's own keys are "stream" and "data").
_EVENT_RE = r'"e"\s*:\s*"([^"]*)"'


def _message_struct(event: str) -> pl.Struct:
    payload = {k: t for k, (_, t) in EVENTS[event].items()}
    return pl.Struct(
        {"stream": pl.String, "data": pl.Struct(payload), **payload, **{f: pl.String for f in RECV_FIELDS}}
    )


def read_lines(path: Path) -> pl.LazyFrame:
    """Every line of a text file (optionally gzip) as one string column `line`, with its number."""
    return pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
        row_index_name="line_no",
        row_index_offset=1,
    )


def receive_time(text: pl.Expr) -> pl.Expr:
    """A receive time written as ISO text (date, 'T' or ' ', time to the second with any
    fraction, then 'Z', an offset or none) or an epoch number -> UTC ns. Fixed layouts rather
    than parsing.iso_timestamp's general one: this runs on every line of a replay (Tardis
    writes '...T00:00:00.1234567Z')."""
    t = text.str.strip_chars()
    numeric = t.str.contains(r"^\d+(?:\.\d*)?$")

    def parse(layout: str) -> pl.Expr:
        return t.str.to_datetime(layout, time_unit="ns", strict=False)

    naive = pl.coalesce(parse("%Y-%m-%dT%H:%M:%S%.f"), parse("%Y-%m-%d %H:%M:%S%.f")).dt.replace_time_zone("UTC")
    zoned = pl.coalesce(parse("%Y-%m-%dT%H:%M:%S%.f%#z"), parse("%Y-%m-%d %H:%M:%S%.f%#z")).dt.convert_time_zone("UTC")
    iso = pl.coalesce(zoned, naive)
    return pl.when(numeric).then(from_epoch_ns(epoch_ns(t))).otherwise(iso)


def decode_messages(lines: pl.LazyFrame, events: tuple[str, ...] = LIGHT_EVENTS) -> pl.LazyFrame:
    """Lines -> one row per message: `line_no`, `e` (the event type), `recv_ts` (nullable)
    and the fields of the message's event type (see EVENTS; null for other events).

    Each event type of `events` is decoded with its own fields; a line of another event type
    is kept with its type only (to be counted), and a line without one is decoded just enough
    to prove it is JSON. Also `recv_prefix`: the text before the JSON (null when the line
    starts with it), so a caller can report a prefix that is not a time.
    """
    line = pl.col("line").str.strip_chars()
    start = line.str.find("{", literal=True).fill_null(0)
    base = lines.filter(line.str.len_bytes() > 0).select(
        "line_no",
        recv_prefix=pl.when(start > 0).then(line.str.slice(0, start).str.strip_chars()),
        json=line.str.slice(start),
    )
    snapshot = pl.when(pl.col("json").str.contains('"lastUpdateId"', literal=True)).then(pl.lit(SNAPSHOT_EVENT))
    base = base.with_columns(e=pl.coalesce(pl.col("json").str.extract(_EVENT_RE, 1), snapshot))
    parts = []
    msg = pl.col("msg")
    field_recv = pl.coalesce([msg.struct.field(f) for f in RECV_FIELDS])
    for event in events:
        decoded = base.filter(pl.col("e") == event).select(
            "line_no", "e", "recv_prefix", msg=pl.col("json").str.json_decode(_message_struct(event))
        )
        # Envelope fields win over top-level ones (the bare-payload case has no `data`).
        parts.append(
            decoded.select(
                "line_no",
                "e",
                pl.coalesce(receive_time(pl.col("recv_prefix")), receive_time(field_recv)).alias("recv_ts"),
                "recv_prefix",
                *[
                    pl.coalesce(
                        msg.struct.field("data").struct.field(k), msg.struct.field(k), *_implied(event, k)
                    ).alias(col)
                    for k, (col, _) in EVENTS[event].items()
                ],
            )
        )
    other = pl.col("e").is_not_null() & ~pl.col("e").is_in(events)
    parts.append(base.filter(other & complete_message(pl.col("json"))).select("line_no", "e", "recv_prefix"))
    # No event type, or another type's line that looks broken: decoded just enough to prove
    # it is JSON (a broken line fails every kind, as a truncated one in the decoded events does).
    unsure = pl.col("e").is_null() | (other & ~complete_message(pl.col("json")))
    is_json = pl.col("json").str.json_decode(pl.Struct({"stream": pl.String})).is_not_null()
    parts.append(base.filter(unsure).filter(is_json).select("line_no", "e", "recv_prefix"))
    return pl.concat(parts, how="diagonal_relaxed")


def _implied(event: str, key: str) -> list[pl.Expr]:
    """A field a message leaves out but its envelope says: a REST snapshot has no symbol, its
    stream name (`btcusdt@depthSnapshot`) has."""
    if event == SNAPSHOT_EVENT and key == "s":
        return [pl.col("msg").struct.field("stream").str.extract(r"^([A-Za-z0-9_]+)@", 1).str.to_uppercase()]
    return []


def complete_message(line: pl.Expr) -> pl.Expr:
    """A complete message ends with '}' and has balanced braces (Binance strings hold none)."""
    return line.str.ends_with("}") & (
        line.str.count_matches("{", literal=True) == line.str.count_matches("}", literal=True)
    )


class ReplayError(SourceError, pl.exceptions.ComputeError):
    """Replay lines that cannot be parsed, said with the file (and line): a SourceError, and
    still the polars ComputeError that callers of read_kind and read_replay have caught."""


def replay_error(files: list[Path], what: str, err: Exception) -> ReplayError:
    """Error path only: a polars failure on replay files as an error naming the file (and the
    first line that is not a message, when there is one) and what is wrong."""
    import zlib

    names = ", ".join(Path(f).name for f in files)
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, pl.exceptions.NoDataError):
        return ReplayError(f"{names}: an empty file: no replay lines to read {what} from")
    if isinstance(err, OSError):  # polars' decompression: a gzip stream cut short or corrupt
        return ReplayError(f"{names}: unreadable compressed file ({first})")
    if isinstance(err, pl.exceptions.SchemaError) and "new_columns" in first:  # read_lines' separator
        return ReplayError(f"{names}: a line holds the control byte 0x1f, which no JSON message holds")
    for f in map(Path, files):
        try:
            found = first_bad_line(f, None)
        except (OSError, EOFError, ValueError, zlib.error):  # a gzip stream broken mid-file: no line to name
            found = None
        if found is not None:
            no, text, reason = found
            return ReplayError(f"{f.name} line {no}: {reason}: {shorten(text)}")
    return ReplayError(f"{names}: cannot parse the replay lines for {what}: {first}")


def _typed_fields(event: str | None, dtype: pl.DataType) -> set[str]:
    return {k for k, (_, t) in EVENTS.get(event or "", {}).items() if t == dtype}


def first_bad_line(path: Path, skip_line: int | None) -> tuple[int, str, str] | None:
    """Error path only (after polars refused the file): the first line that is not valid JSON
    or has a field of the wrong type, as (line number, text, reason)."""
    import gzip
    import json

    with path.open("rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", errors="replace") as fh:
        for no, raw in enumerate(fh, 1):
            text = raw.strip()
            if not text or no == skip_line:
                continue
            try:
                msg = json.loads(text[max(text.find("{"), 0) :])
            except json.JSONDecodeError as err:
                return no, text, f"invalid JSON ({err})"
            if not isinstance(msg, dict):
                return no, text, "not a JSON object"
            data = msg.get("data") if isinstance(msg.get("data"), dict) else msg
            ints, bools = _typed_fields(data.get("e"), pl.Int64), _typed_fields(data.get("e"), pl.Boolean)
            for key, value in data.items():
                is_int = isinstance(value, int) and not isinstance(value, bool)
                wrong_int = key in ints and value is not None and not is_int
                wrong_bool = key in bools and value is not None and not isinstance(value, bool)
                if wrong_int or wrong_bool:
                    want = "an integer" if wrong_int else "true/false"
                    return no, text, f"field {key!r} is not {want}: {value!r}"
    return None


def shorten(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def read_lines_schema() -> pl.LazyFrame:
    return pl.LazyFrame(schema={"line": pl.String, "line_no": pl.UInt32})

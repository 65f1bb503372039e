"""The order book: L2 deltas by price level (`OrderBookDelta`) and depth-10 snapshots
(`OrderBookDepth10`), as NautilusTrader backtests them.

Deltas, one row per change of one price level, in the order the venue sent them:
- `action`: 1 ADD, 2 UPDATE, 3 DELETE, 4 CLEAR (Nautilus's `BookAction`); `side`: 0 none (a
  CLEAR), 1 bid, 2 ask (`OrderSide`); `size` is the level's new total (0 for a DELETE).
- A snapshot is a CLEAR (flags F_SNAPSHOT) followed by an ADD per level; `flags` is F_LAST (128)
  on the last delta of each event batch (the deltas sharing one `ts_event`), which is when a
  Nautilus book applies them, else 0; `sequence` is the venue's update id where it has one
  (Binance's `u`), else 0. This is exactly how `TardisCSVDataLoader.load_deltas` groups, flags
  and numbers them (see `batch_flags`), tested record for record.
- `order_id` is 0 for every L2 delta (as the loader writes it) and not kept in the frame.

Depth-10 snapshots: one row per snapshot, the best 10 levels per side (price, size, count), as
`load_depth10` builds them from Tardis `book_snapshot_5` / `book_snapshot_25`: absent levels are
Nautilus's null order (price 0, size 0, count 0), flags F_LAST, sequence 0.
"""

from __future__ import annotations

import numpy as np
import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDepth10
from nautilus_trader.model.enums import BookAction, OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import PRICE_MAX, QUANTITY_MAX, Price, Quantity

from hedgegrid_assets.frames.book_codes import ADD, ASK, BID, CLEAR, DELETE, NO_SIDE, UPDATE
from hedgegrid_assets.frames.book_replay import crossed_rows
from hedgegrid_assets.frames.fixed_point import epoch_ns, largest_writable, to_fixed_binary
from hedgegrid_assets.frames.kind import (
    TIMESTAMP,
    DataKind,
    PartitionContext,
    nautilus_arrow_schema,
    on_grid,
    to_epoch_ns,
)
from hedgegrid_assets.instruments import Instrument

DEPTH = 10
LEVEL_COLUMNS = [
    f"{side}_{field}_{i}" for side in ("bid", "ask") for field in ("price", "size", "count") for i in range(DEPTH)
]


class OrderBookDeltasFrame(pa.DataFrameModel):
    action: pl.UInt8 = pa.Field(isin=[ADD, UPDATE, DELETE, CLEAR], description="1 ADD, 2 UPDATE, 3 DELETE, 4 CLEAR")
    side: pl.UInt8 = pa.Field(isin=[NO_SIDE, BID, ASK], description="0 none (CLEAR), 1 bid, 2 ask")
    price: pl.Float64 = pa.Field(ge=0)
    size: pl.Float64 = pa.Field(ge=0, description="the level's new total size; 0 deletes it")
    flags: pl.UInt8 = pa.Field(description="F_LAST 128 ends an event batch, F_SNAPSHOT 32 marks a snapshot's CLEAR")
    sequence: pl.UInt64 = pa.Field(description="venue update id (Binance u), else 0")
    ts_event: TIMESTAMP = pa.Field(description="Exchange time of the book event")
    ts_init: TIMESTAMP = pa.Field(description="Local receive time")

    class Config:
        strict = True


def _delta_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    spec = part.instrument.spec
    return {"price": [on_grid(spec.tick_size)], "size": [on_grid(spec.step_size)]}


def _deltas_to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[OrderBookDelta]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    pp, sp = instrument.price_precision, instrument.size_precision
    out = []
    for a, s, p, q, f, seq, te, ti in zip(
        *(frame.get_column(c).to_list() for c in ("action", "side", "price", "size", "flags", "sequence")),
        to_epoch_ns(frame, "ts_event"),
        to_epoch_ns(frame, "ts_init"),
        strict=True,
    ):
        order = BookOrder(OrderSide(s), Price(p, pp), Quantity(q, sp), 0)
        out.append(OrderBookDelta(iid, BookAction(a), order, f, seq, int(te), int(ti)))
    return out


def _deltas_to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    schema = nautilus_arrow_schema(
        OrderBookDelta,
        nautilus_pyo3.OrderBookDelta.get_metadata(
            nautilus_pyo3.InstrumentId.from_str(instrument.instrument_id),
            instrument.price_precision,
            instrument.size_precision,
        ),
    )
    columns = {
        "action": frame.get_column("action").to_arrow(),
        "side": frame.get_column("side").to_arrow(),
        "price": to_fixed_binary(frame.get_column("price"), instrument.price_precision),
        "size": to_fixed_binary(frame.get_column("size"), instrument.size_precision),
        "order_id": pyarrow.array(np.zeros(frame.height, dtype=np.uint64)),
        "flags": frame.get_column("flags").to_arrow(),
        "sequence": frame.get_column("sequence").to_arrow(),
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict(columns, schema=schema)


def _delta_rules(part: PartitionContext) -> list[tuple[pl.Expr, str]]:
    level = pl.col("action") != CLEAR
    return [
        (level & (pl.col("side") == NO_SIDE), "a level change without a side"),
        (level & ~(pl.col("price") > 0), "price not a positive number"),
        ((pl.col("action") == DELETE) & (pl.col("size") != 0), "a DELETE with a size"),
        (pl.col("action").is_in([ADD, UPDATE]) & ~(pl.col("size") > 0), "an ADD or UPDATE without a size"),
    ]


def _book_checks() -> list[pa.Check]:
    """Blocking: the day's book starts from a snapshot, and no batch leaves it crossed."""

    def starts_from_snapshot(d) -> bool:
        first = d.lazyframe.select(pl.col("action").first()).collect().item()
        return first is None or first == CLEAR

    def never_crossed(d) -> pl.LazyFrame:
        frame = d.lazyframe.select("action", "side", "price", "size", "flags").collect()
        return pl.LazyFrame([crossed_rows(frame)])

    return [
        pa.Check(starts_from_snapshot, name="starts_from_snapshot",
                 error="the day's first delta is not a snapshot's CLEAR: the book would start from nothing"),
        pa.Check(never_crossed, name="book_never_crossed",
                 error="the book is crossed after this batch (best bid >= best ask)"),
    ]  # fmt: skip


ORDER_BOOK_DELTAS = DataKind(
    name="order_book_deltas",
    cli_name="deltas",
    description="L2 order book deltas by price level (Nautilus OrderBookDelta)",
    model=OrderBookDeltasFrame,
    nautilus_cls=OrderBookDelta,
    partition_checks=_delta_checks,
    to_nautilus=_deltas_to_nautilus,
    to_arrow=_deltas_to_arrow,
    price_precision=lambda inst: inst.price_precision,
    finite=("price", "size"),
    maxima=lambda inst: {
        "price": largest_writable(PRICE_MAX, inst.price_precision),
        "size": largest_writable(QUANTITY_MAX, inst.size_precision),
    },
    sane_maxima=lambda inst: {"price": inst.max_price, "size": inst.max_quantity},
    row_rules=_delta_rules,
    frame_checks=_book_checks,
    # Deltas repeat legitimately (a level set twice to one size in a batch): no key to be unique.
    unique_key=(),
)


# -- depth-10 snapshots ---------------------------------------------------------------------


def _depth_model() -> type[pa.DataFrameModel]:
    fields = {name: (pl.UInt32 if "_count_" in name else pl.Float64, pa.Field(ge=0)) for name in LEVEL_COLUMNS}
    annotations = {n: t for n, (t, _) in fields.items()}
    annotations |= {"flags": pl.UInt8, "sequence": pl.UInt64, "ts_event": TIMESTAMP, "ts_init": TIMESTAMP}
    namespace = {n: f for n, (_, f) in fields.items()}
    namespace |= {
        "flags": pa.Field(),
        "sequence": pa.Field(),
        "ts_event": pa.Field(description="Exchange time of the snapshot"),
        "ts_init": pa.Field(description="Local receive time"),
        "__annotations__": annotations,
        "__module__": __name__,
        "__doc__": "The best 10 levels per side; absent levels are 0 (Nautilus's null order).",
        "Config": type("Config", (), {"strict": True}),
    }
    return type("OrderBookDepth10Frame", (pa.DataFrameModel,), namespace)


OrderBookDepth10Frame = _depth_model()
DEPTH_PRICES = [c for c in LEVEL_COLUMNS if "_price_" in c]
DEPTH_SIZES = [c for c in LEVEL_COLUMNS if "_size_" in c]
DEPTH_COUNTS = [c for c in LEVEL_COLUMNS if "_count_" in c]


def _depth_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    spec = part.instrument.spec
    return {
        **{c: [on_grid(spec.tick_size)] for c in DEPTH_PRICES},
        **{c: [on_grid(spec.step_size)] for c in DEPTH_SIZES},
    }


def _depth_to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    schema = nautilus_arrow_schema(
        OrderBookDepth10,
        nautilus_pyo3.OrderBookDepth10.get_metadata(
            nautilus_pyo3.InstrumentId.from_str(instrument.instrument_id),
            instrument.price_precision,
            instrument.size_precision,
        ),
    )
    columns = {
        **{c: to_fixed_binary(frame.get_column(c), instrument.price_precision) for c in DEPTH_PRICES},
        **{c: to_fixed_binary(frame.get_column(c), instrument.size_precision) for c in DEPTH_SIZES},
        **{c: frame.get_column(c).to_arrow() for c in DEPTH_COUNTS},
        "flags": frame.get_column("flags").to_arrow(),
        "sequence": frame.get_column("sequence").to_arrow(),
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict({n: columns[n] for n in schema.names}, schema=schema)


NULL_ORDER = BookOrder(OrderSide.NO_ORDER_SIDE, Price(0, 0), Quantity(0, 0), 0)


def _depth_to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[OrderBookDepth10]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    pp, sp = instrument.price_precision, instrument.size_precision
    te, ti = to_epoch_ns(frame, "ts_event"), to_epoch_ns(frame, "ts_init")
    out = []
    for n, row in enumerate(frame.iter_rows(named=True)):
        books = {}
        for side, order_side in (("bid", OrderSide.BUY), ("ask", OrderSide.SELL)):
            books[side] = [
                BookOrder(order_side, Price(row[f"{side}_price_{i}"], pp), Quantity(row[f"{side}_size_{i}"], sp), 0)
                if row[f"{side}_count_{i}"]
                else NULL_ORDER  # as the loader makes an absent level (precision 0)
                for i in range(DEPTH)
            ]
        out.append(
            OrderBookDepth10(
                iid,
                books["bid"],
                books["ask"],
                [row[f"bid_count_{i}"] for i in range(DEPTH)],
                [row[f"ask_count_{i}"] for i in range(DEPTH)],
                row["flags"],
                row["sequence"],
                int(te[n]),
                int(ti[n]),
            )
        )
    return out


def _depth_rules(part: PartitionContext) -> list[tuple[pl.Expr, str]]:
    bid, ask = pl.col("bid_price_0"), pl.col("ask_price_0")
    return [((bid > 0) & (ask > 0) & (bid >= ask), "crossed or locked book (best bid >= best ask)")]


ORDER_BOOK_DEPTH10 = DataKind(
    name="order_book_depth10",
    cli_name="depth10",
    description="Order book snapshots, 10 levels per side (Nautilus OrderBookDepth10)",
    model=OrderBookDepth10Frame,
    nautilus_cls=OrderBookDepth10,
    partition_checks=_depth_checks,
    to_nautilus=_depth_to_nautilus,
    to_arrow=_depth_to_arrow,
    price_precision=lambda inst: inst.price_precision,
    finite=(*DEPTH_PRICES, *DEPTH_SIZES),
    maxima=lambda inst: {
        **{c: largest_writable(PRICE_MAX, inst.price_precision) for c in DEPTH_PRICES},
        **{c: largest_writable(QUANTITY_MAX, inst.size_precision) for c in DEPTH_SIZES},
    },
    row_rules=_depth_rules,
    unique_key=("ts_event", "ts_init"),
)

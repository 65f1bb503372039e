"""The offline sample source: a deterministic synthetic Binance USDT-M day.

It writes what a recorder of the real exchange receives, so the real parser reads it:
`aggTrade`, `bookTicker` and `markPrice@1s` messages in the combined-stream envelope, one per line, each
prefixed with its local receive time as in a Tardis replay (`<28-char ts> <json>`).

- trades arrive in bursts (clustered arrival times), same-side within a burst, both sides;
  prices follow a random walk on the tick grid, sizes are on the step grid;
- the top of the book before each trade, the trade printing at the ask (a buyer) or the bid
  (a seller), the other side 1-3 ticks away;
- an L2 book of BOOK_LEVELS levels a side consistent with those quotes: a REST depth snapshot
  (Tardis's `depthSnapshot` envelope) before the first quote, then before each quote a
  `depthUpdate` (ids chained by `pu`) that moves the book so its best bid and ask are that
  quote's, price and size, deleting the levels it leaves;
- a mark price every second within a few basis points of the last trade;
- the funding rate drifts hourly inside the exchange cap, and every markPrice message carries
  it with the next funding time (00/08/16 UTC by default).
Everything is generated with numpy/polars, seeded by (seed, symbol, day).
"""

from __future__ import annotations

import gzip
import zlib
from decimal import Decimal
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import Field

from hedgegrid_assets.formats.binance import depth as binance_depth
from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.frames import ORDER_BOOK_DELTAS, DataKind, PartitionContext
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource, Reader

MS_PER_DAY = 86_400_000
# Typical price levels (Jan 2024) so generated data looks like the real symbol.
PRICE_LEVELS = {"BTCUSDT": 42_500.0, "ETHUSDT": 2_300.0, "BNBUSDT": 310.0, "SOLUSDT": 100.0, "XRPUSDT": 0.62}
DAILY_VOLATILITY = 0.025
BOOK_LEVELS = 5


def _levels_json(prices: pl.Expr, sizes: pl.Expr, pp: int, sp: int) -> pl.Expr:
    """One level as Binance writes it: ["price","qty"]."""
    return _text('["', _decimal_str(prices, pp), '","', _decimal_str(sizes, sp), '"]')


def _book_lines(quotes: pl.DataFrame, stream: str, symbol: str, pp: int, sp: int, unit_tick: int, unit_step: int,
                rng: np.random.Generator) -> pl.DataFrame:  # fmt: skip
    """The depth snapshot and one depthUpdate per quote (columns recv_ns, line); see the module doc."""
    n, k = quotes.height, BOOK_LEVELS
    if n == 0:
        return pl.DataFrame(schema={"recv_ns": pl.Int64, "line": pl.String})
    bid = quotes.get_column("b").to_numpy() // unit_tick
    ask = quotes.get_column("a").to_numpy() // unit_tick
    top_sizes = {"bid": quotes.get_column("B").to_numpy(), "ask": quotes.get_column("A").to_numpy()}
    deep = rng.integers(1, 400, (n, k)) * unit_step
    rows = []
    for side, best, sign in (("bid", bid, -1), ("ask", ask, 1)):
        levels = best[:, None] + sign * np.arange(k)[None, :]  # new levels, best first
        sizes = deep.copy()
        sizes[:, 0] = top_sizes[side]
        prev = np.vstack([levels[:1], levels[:-1]])  # the book before (the snapshot's for the first)
        lo, hi = levels.min(axis=1)[:, None], levels.max(axis=1)[:, None]
        gone = (prev < lo) | (prev > hi)
        msg = np.repeat(np.arange(n), k)
        rows.append(pl.DataFrame({"msg": msg, "side": side, "ticks": levels.ravel(), "units": sizes.ravel()}))
        rows.append(pl.DataFrame({"msg": msg, "side": side, "ticks": prev.ravel(), "units": np.zeros(n * k, np.int64)}
                                 ).filter(pl.Series(gone.ravel())))  # fmt: skip
    levels = pl.concat(rows).with_columns(text=_levels_json(pl.col("ticks") * unit_tick, pl.col("units"), pp, sp))
    lists = levels.group_by("msg", "side", maintain_order=True).agg(pl.col("text").str.join(","))
    per_msg = lists.pivot(on="side", index="msg", values="text").sort("msg")
    first_id = int(quotes.get_column("u")[0])
    span = rng.integers(0, 3, n)
    u = first_id + np.cumsum(span + 1)
    big_u = u - span
    pu = np.r_[first_id, u[:-1]]
    updates = pl.DataFrame({
        "recv_ns": quotes.get_column("recv_ns").to_numpy() - 500,
        "E": quotes.get_column("E").to_numpy(), "T": quotes.get_column("T").to_numpy(), "U": big_u, "u": u, "pu": pu,
    }).with_columns(per_msg.select(pl.col("bid").fill_null(""), pl.col("ask").fill_null(""))).select(
        "recv_ns",
        line=_text(
            f'{{"stream":"{stream}@depth@0ms","data":{{"e":"depthUpdate","E":', pl.col("E"), ',"T":', pl.col("T"),
            f',"s":"{symbol}","U":', pl.col("U"), ',"u":', pl.col("u"), ',"pu":', pl.col("pu"),
            ',"b":[', pl.col("bid"), '],"a":[', pl.col("ask"), "]}}",
        ),
    )  # fmt: skip
    # The snapshot: the first quote's book, its lastUpdateId inside the first update's ids.
    first = levels.filter((pl.col("msg") == 0) & (pl.col("units") > 0))
    side_text = lambda side: ",".join(first.filter(pl.col("side") == side).get_column("text"))  # noqa: E731
    t0 = int(quotes.get_column("T")[0])
    snapshot = (f'{{"stream":"{stream}@depthSnapshot","generated":true,"data":{{"lastUpdateId":{int(big_u[0])},'
                f'"E":{t0},"T":{t0},"bids":[{side_text("bid")}],"asks":[{side_text("ask")}]}}}}')  # fmt: skip
    head = pl.DataFrame({"recv_ns": [int(updates.get_column("recv_ns")[0]) - 500], "line": [snapshot]})
    return pl.concat([head, updates])


def _decimal_str(units: pl.Expr, places: int) -> pl.Expr:
    """Integer count of 10**-places units -> exact decimal string ('4250010', 1 -> '425001.0')."""
    if places == 0:
        return units.cast(pl.String)
    scale = 10**places
    sign = pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    a = units.abs()
    return pl.concat_str(sign, (a // scale).cast(pl.String), pl.lit("."), (a % scale).cast(pl.String).str.zfill(places))


def _text(*pieces: str | pl.Expr) -> pl.Expr:
    """Concatenate literal text and string expressions (pl.format reads braces as fields)."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p.cast(pl.String) for p in pieces])


def _replay_ts(ns: pl.Expr) -> pl.Expr:
    """Epoch ns -> Tardis local timestamp '2024-01-01T00:00:00.1234567Z' (100 ns resolution)."""
    text = pl.from_epoch(ns, time_unit="ns").dt.strftime("%Y-%m-%dT%H:%M:%S%.9f")
    return text.str.slice(0, 27) + pl.lit("Z")


def generate_day(part: PartitionContext, trades_per_day: int, seed: int, book: bool = True) -> pl.DataFrame:
    """One `line` column: the day's replay lines sorted by receive time (`book`: with the depth
    snapshot and updates; without, the lines a replay of the other channels holds)."""
    inst = part.instrument
    symbol = inst.symbol
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode()), part.day.toordinal()])
    day_ms = part.start_ns // 1_000_000
    tick, step = Decimal(inst.spec.tick_size), Decimal(inst.spec.step_size)
    pp, sp = inst.price_precision, inst.size_precision

    # Trades: burst centres uniform over the day, a geometric number of trades per burst a few
    # ms apart; one taker side per burst.
    mean_burst = 8
    n_bursts = max(1, int(trades_per_day * rng.uniform(0.8, 1.2) / mean_burst))
    centres = np.sort(rng.integers(0, MS_PER_DAY - 60_000, n_bursts))
    sizes = rng.geometric(1 / mean_burst, n_bursts)
    n = int(sizes.sum())
    burst_of = np.repeat(np.arange(n_bursts), sizes)
    offsets = rng.exponential(3.0, n).round().astype(np.int64)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    within = np.cumsum(offsets) - np.repeat(np.cumsum(offsets)[first] - offsets[first], sizes)
    t_ms = np.sort(centres[burst_of] + within)
    seller = np.repeat(rng.random(n_bursts) < 0.5, sizes)

    # Log-price random walk in trade time, scaled to the day's volatility.
    level = PRICE_LEVELS.get(symbol, 100.0) * float(np.exp(rng.normal(0, 0.05)))
    steps = rng.normal(0, DAILY_VOLATILITY / np.sqrt(max(n, 1)), n)
    prices = level * np.exp(np.cumsum(steps))
    price_ticks = np.maximum(1, np.round(prices / float(tick))).astype(np.int64)
    qty_steps = np.maximum(1, np.round(rng.lognormal(0, 1.2, n) * 0.02 / float(step) * 1000 / level)).astype(np.int64)

    units_per_tick = int(tick * 10**pp)
    units_per_step = int(step * 10**sp)
    trade_ms = day_ms + t_ms
    event_ms = trade_ms + rng.integers(0, 5, n)
    agg_base = (part.day.toordinal() - 730_000) * 10_000_000
    stream = symbol.lower()
    # One TCP stream: receive times keep the send order.
    trade_recv_ns = np.maximum.accumulate(event_ms * 1_000_000 + rng.integers(1_000_000, 60_000_000, n))
    trades = pl.DataFrame(
        {
            "T": trade_ms,
            "E": event_ms,
            "recv_ns": trade_recv_ns,
            "p": price_ticks * units_per_tick,
            "q": qty_steps * units_per_step,
            "m": seller,
            "a": agg_base + np.arange(n),
        }
    ).select(
        "recv_ns",
        line=_text(
            f'{{"stream":"{stream}@aggTrade","data":{{"e":"aggTrade","E":',
            pl.col("E"),
            ',"a":',
            pl.col("a"),
            f',"s":"{symbol}","p":"',
            _decimal_str(pl.col("p"), pp),
            '","q":"',
            _decimal_str(pl.col("q"), sp),
            '","f":',
            pl.col("a") * 3,
            ',"l":',
            pl.col("a") * 3 + 2,
            ',"T":',
            pl.col("T"),
            ',"m":',
            pl.when("m").then(pl.lit("true")).otherwise(pl.lit("false")),
            "}}",
        ),
    )

    # The top of the book just before each trade: a taker buying lifts the ask, so the trade
    # prints at the ask (at the bid for a seller); the other side 1-3 ticks away.
    spread = rng.integers(1, 4, n)
    bid_ticks = np.where(seller, price_ticks, price_ticks - spread)
    ask_ticks = np.where(seller, price_ticks + spread, price_ticks)
    quote_values = pl.DataFrame(
        {
            "T": trade_ms,
            "E": trade_ms,
            "recv_ns": trade_recv_ns - 1_000,  # received just before the trade it precedes
            "u": agg_base * 10 + np.arange(n),
            "b": np.maximum(bid_ticks, 1) * units_per_tick,
            "a": ask_ticks * units_per_tick,
            "B": np.maximum(1, np.round(rng.lognormal(0, 1.0, n) * qty_steps)).astype(np.int64) * units_per_step,
            "A": np.maximum(1, np.round(rng.lognormal(0, 1.0, n) * qty_steps)).astype(np.int64) * units_per_step,
        }
    )
    quotes = quote_values.select(
        "recv_ns",
        line=_text(
            f'{{"stream":"{stream}@bookTicker","data":{{"e":"bookTicker","u":',
            pl.col("u"),
            f',"s":"{symbol}","b":"',
            _decimal_str(pl.col("b"), pp),
            '","B":"',
            _decimal_str(pl.col("B"), sp),
            '","a":"',
            _decimal_str(pl.col("a"), pp),
            '","A":"',
            _decimal_str(pl.col("A"), sp),
            '","T":',
            pl.col("T"),
            ',"E":',
            pl.col("E"),
            "}}",
        ),
    )

    # Mark price every second near the last traded price; 8 decimals like Binance.
    secs_ms = day_ms + np.arange(0, MS_PER_DAY, 1000, dtype=np.int64)
    last = np.searchsorted(trade_ms, secs_ms, side="right") - 1
    traded = np.where(last >= 0, price_ticks[np.maximum(last, 0)] * float(tick), price_ticks[0] * float(tick))
    mark = traded * (1 + rng.normal(0, 2e-4, secs_ms.size))
    # Funding rate: hourly random walk around 1 bp, clamped to the cap, in 1e-8 units.
    cap_units = int(Decimal(inst.spec.funding_rate_cap) * 10**8)
    hourly = np.clip(10_000 + np.cumsum(rng.normal(0, 300, 24)).round(), -cap_units, cap_units).astype(np.int64)
    interval_ms = inst.spec.funding_interval_hours * 3_600_000
    marks = pl.DataFrame(
        {
            "E": secs_ms + rng.integers(0, 3, secs_ms.size),
            "p": np.round(mark * 1e8).astype(np.int64),
            "r": hourly[np.arange(secs_ms.size) // 3600],
        }
    ).select(
        recv_ns=pl.col("E") * 1_000_000 + 2_000_000,
        line=_text(
            f'{{"stream":"{stream}@markPrice@1s","data":{{"e":"markPriceUpdate","E":',
            pl.col("E"),
            f',"s":"{symbol}","p":"',
            _decimal_str(pl.col("p"), 8),
            '","P":"',
            _decimal_str(pl.col("p"), 8),
            '","i":"',
            _decimal_str(pl.col("p") - pl.col("p") // 5000, 8),
            '","r":"',
            _decimal_str(pl.col("r"), 8),
            '","T":',
            (pl.col("E") // interval_ms + 1) * interval_ms,
            "}}",
        ),
    )
    depth = [_book_lines(quote_values, stream, symbol, pp, sp, units_per_tick, units_per_step, rng)] if book else []
    lines = pl.concat([*depth, quotes, trades, marks]).sort("recv_ns", maintain_order=True)
    lines = lines.filter(pl.col("recv_ns") < part.end_ns)  # the day file holds the day's receive times
    return lines.select(line=_text(_replay_ts(pl.col("recv_ns")), " ", pl.col("line")))


class SampleSource(MarketDataSource):
    """Synthetic Binance USDT-M data, generated offline (the default source)."""

    trades_per_day: int = Field(20_000, description="Mean trades per symbol-day")
    seed: int = Field(7, description="Base seed; each symbol-day derives its own")

    @property
    def name(self) -> str:
        return "sample"

    def land(self, request: LandingRequest) -> None:
        part = request.part
        lines = generate_day(part, self.trades_per_day, self.seed)
        path = request.dest / f"binance-futures_{part.day:%Y-%m-%d}_{part.instrument.symbol}.ndjson.gz"
        # mtime=0: the gzip header carries no write time, so a rebuild lands identical bytes.
        with gzip.GzipFile(path, "wb", compresslevel=5, mtime=0) as out:
            lines.write_csv(out, include_header=False, quote_style="never")
        request.log(f"generated {lines.height:,} messages into {path.name}")

    def readers(self) -> dict[str, Reader]:
        return {kind.name: partial(_read, kind) for kind in binance_ws.KINDS_DECODED}


def _read(kind: DataKind, files: list[Path], part: PartitionContext) -> pl.DataFrame | tuple[pl.DataFrame, dict]:
    if kind is ORDER_BOOK_DELTAS:
        frame, stats = binance_depth.read_replay(files)
        return ORDER_BOOK_DELTAS.conform(frame), stats.metadata()
    return binance_ws.read_kind(kind, files)

"""data.binance.vision USDT-M futures files (`futures/um`) -> canonical frames.

Config: `{"format": "binance", "base_path": DIR}`, optional `"trades": "aggTrades" | "trades"`
(default: aggTrades when the day has that file, else trades). Files are found under their
published names, either directly in DIR or in the site's tree below it
(`[data/]futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-02.zip`):

- trades: daily `SYMBOL-aggTrades-DATE.zip` (`agg_trade_id,price,quantity,first_trade_id,
  last_trade_id,transact_time,is_buyer_maker`) or `SYMBOL-trades-DATE.zip`
  (`id,price,qty,quote_qty,time,is_buyer_maker`), with or without a header row (Binance added
  headers on 2022-08-11). ts_event = ts_init = the trade time (the files hold no receive
  time); is_buyer_maker true means the aggressor SOLD.
- mark prices: daily 1m `markPriceKlines` `SYMBOL-1m-DATE.zip`: one update per minute, the
  minute's CLOSE at its close_time (hh:mm:59.999). The close is the last mark of the minute,
  so at close_time it is exactly what a subscriber knew; the open at open_time would be as
  honest, but the close keeps the most recent mark and puts each value at the end of the
  interval it summarises, never before it was known.
- funding: monthly `SYMBOL-fundingRate-YYYY-MM.zip` (`calc_time,funding_interval_hours,
  last_funding_rate`; the interval is the file's, else the instrument's). Each row is the
  rate settled at calc_time; it becomes an update with next_funding_time = calc_time (rounded to the whole second: the file's times can be a few ms
  late, the settlement is on the hour) and ts_event = ts_init = 1 ms before it. That is the
  latest moment the rate was (practically) known before settling: putting it at the previous
  settlement instead would hand a backtest the final rate 8 hours early. A partition therefore
  holds the settlements in (day 00:00, next day 00:00]: 08:00, 16:00 and the next midnight,
  the ones the funding coverage check expects. The next month's file is landed too, when
  present, for the last day of a month (its midnight settlement is in that file).
- quotes (optional: a day without the file has no quotes, nothing expects them, nothing
  warns): daily `SYMBOL-bookTicker-DATE.zip` (`update_id,best_bid_price,best_bid_qty,
  best_ask_price,best_ask_qty,transaction_time,event_time`, ms, header or not): one quote per
  row, ts_event = transaction_time, ts_init = event_time (the time Binance sent it, the
  closest the file has to a receive time).
- Each zip is verified against its `.CHECKSUM` (`<sha256>  <name>.zip`) when one is present;
  both are landed. The CSV inside a zip must be for the partition's symbol.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.csv.reader import Table, check_interval, funding_extras, load_rows, read_table, value
from hedgegrid_assets.frames import (
    FUNDING_RATES,
    DataKind,
    PartitionContext,
)
from hedgegrid_assets.frames.funding_rates import from_settlements

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
# klines and markPriceKlines are both published as SYMBOL-1m-DATE.zip: klines land as
# SYMBOL-klines-1m-DATE.zip (their CHECKSUM still names the published file).
KLINES_LANDED = "-klines-1m-"
TRADE_TYPES = {"aggtrades": "aggTrades", "aggtrade": "aggTrades", "trades": "trades", "trade": "trades"}
TABLES = {
    "aggTrades": Table(
        columns={"timestamp": "transact_time", "price": "price", "size": "quantity",
                 "aggressor_side": "is_buyer_maker", "trade_id": "agg_trade_id"},
        has_header=None,
        column_names=("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                      "is_buyer_maker"),
        side_is_buyer_maker=True,
    ),
    "trades": Table(
        columns={"timestamp": "time", "price": "price", "size": "qty", "aggressor_side": "is_buyer_maker",
                 "trade_id": "id"},
        has_header=None,
        column_names=("id", "price", "qty", "quote_qty", "time", "is_buyer_maker"),
        side_is_buyer_maker=True,
    ),
    "bookTicker": Table(
        columns={"timestamp": "transaction_time", "local_timestamp": "event_time", "bid_price": "best_bid_price",
                 "bid_size": "best_bid_qty", "ask_price": "best_ask_price", "ask_size": "best_ask_qty"},
        has_header=None,
        column_names=("update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
                      "transaction_time", "event_time"),
    ),
    "markPriceKlines": Table(
        columns={"timestamp": "close_time", "mark_price": "close"},
        has_header=None,
        column_names=KLINE_COLUMNS,
    ),
    # The same kline files as bars (exchange_bars from klines, mark_bars from markPriceKlines):
    # open_time is the bar's open; its close (ts_init) is open_time + 1 minute.
    "bars": Table(
        columns={"timestamp": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
                 "volume": "volume"},
        has_header=None,
        column_names=KLINE_COLUMNS,
    ),
    "fundingRate": Table(
        columns={"timestamp": "calc_time", "funding_rate": "last_funding_rate",
                 "funding_interval_hours": "funding_interval_hours"},
        has_header=None,
        column_names=("calc_time", "funding_interval_hours", "last_funding_rate"),
    ),
}  # fmt: skip
CHECKSUM_SUFFIX = ".CHECKSUM"
NAME_PATTERNS = [
    (r"-aggTrades-\d{4}-\d{2}-\d{2}\.zip$", "aggTrades"),
    (r"-trades-\d{4}-\d{2}-\d{2}\.zip$", "trades"),
    (r"-bookTicker-\d{4}-\d{2}-\d{2}\.zip$", "bookTicker"),
    (r"-klines-1m-\d{4}-\d{2}-\d{2}\.zip$", "klines"),
    (r"-1m-\d{4}-\d{2}-\d{2}\.zip$", "markPriceKlines"),
    (r"-fundingRate-\d{4}-\d{2}\.zip$", "fundingRate"),
]


def names(part: PartitionContext) -> dict[str, str]:
    s, d = part.instrument.symbol, part.day
    nxt = (d.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return {
        "aggTrades": f"{s}-aggTrades-{d}.zip",
        "trades": f"{s}-trades-{d}.zip",
        "bookTicker": f"{s}-bookTicker-{d}.zip",
        "markPriceKlines": f"{s}-1m-{d}.zip",
        "klines": f"{s}-1m-{d}.zip",  # the published name; landed as f"{s}{KLINES_LANDED}{d}.zip"
        "fundingRate": f"{s}-fundingRate-{d:%Y-%m}.zip",
        "fundingRate_next": f"{s}-fundingRate-{nxt:%Y-%m}.zip",
    }


def kind_of_name(name: str) -> str | None:
    for pattern, what in NAME_PATTERNS:
        if re.search(pattern, name):
            return what
    return None


def landed_klines(part: PartitionContext) -> str:
    return f"{part.instrument.symbol}{KLINES_LANDED}{part.day}.zip"


def verify_checksum(zip_path: Path, checksum_path: Path, published: str | None = None) -> None:
    """SourceError unless the zip's sha256 is the one its .CHECKSUM file states (for the
    file's name, or its `published` name when it lands under another)."""
    text = checksum_path.read_text(errors="replace").strip()
    match = re.fullmatch(r"([0-9a-fA-F]{64})\s+\*?(\S+)", text.splitlines()[0].strip() if text else "")
    if not match:
        raise SourceError(f"{checksum_path}: not a checksum file ('<sha256>  <file>.zip'): {text[:80]!r}")
    expected, named = match.group(1).lower(), match.group(2)
    if Path(named).name not in (zip_path.name, published):
        raise SourceError(f"{checksum_path}: names {named}, not {zip_path.name}")
    digest = hashlib.sha256()
    with zip_path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise SourceError(
            f"{zip_path}: checksum mismatch: sha256 is {digest.hexdigest()}, {checksum_path.name} says {expected}"
        )


def check_member_symbol(path: Path, part: PartitionContext) -> None:
    """The CSV inside a Binance zip is named after its symbol: refuse another symbol's file."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(f"{path}: unreadable zip file ({err})") from None
    symbol = part.instrument.symbol
    for member in members:
        found = Path(member).name.split("-", 1)[0]
        if found.isalnum() and found.upper() != symbol and found.upper().endswith(("USDT", "USDC", "BUSD", "USD")):
            raise SourceError(f"{path} (member {member}): the file is for another symbol: {found}, not {symbol}")


def read_bars(kind: DataKind, paths: list[Path], part: PartitionContext) -> pl.DataFrame:
    """Kline files as bars: ts_event the minute's open, ts_init its close (open + 1 minute), as
    the bars made from trades are stamped."""
    frames = []
    for path in paths:
        check_member_symbol(path, part)
        bars = read_table(path, TABLES["bars"], kind, part)
        frames.append(bars.with_columns(ts_init=pl.col("ts_event") + pl.duration(minutes=1)))
    return kind.conform(pl.concat(frames)) if frames else kind.empty_frame()


def read_funding(paths: list[Path], part: PartitionContext) -> pl.DataFrame:
    frames = []
    for path in paths:
        check_member_symbol(path, part)
        rows = load_rows(
            path,
            TABLES["fundingRate"],
            ["timestamp", "funding_rate"],
            ["funding_interval_hours"],
            part,
            values=["funding_rate", "funding_interval_hours"],
        )
        if rows is None:
            continue
        check_interval(rows)
        frames.append(
            rows.frame.select(
                **from_settlements(pl.col("_ts_event")),
                rate=value("funding_rate"),
                interval=funding_extras(rows.cols)["interval"],
            ).filter(pl.col("ts_init").is_between(part.start, part.end, closed="left"))
        )
    if not frames:
        return FUNDING_RATES.empty_frame()
    # Unsorted monthly rows are fine: conform sorts by ts_init (a repeated row is left to quarantine).
    return FUNDING_RATES.conform(pl.concat(frames))

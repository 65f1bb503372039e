"""The synthetic source writes real Binance shapes, deterministically, and the parser reads them."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import polars as pl
import pytest

from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, QUOTES, TRADES, PartitionContext
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import LandingRequest
from hedgegrid_assets.sources.sample import SampleSource, generate_day


def part(symbol="BTCUSDT", day=dt.date(2024, 1, 2)) -> PartitionContext:
    s = Settings()
    return PartitionContext(day, instrument_for(symbol, s), s.checks)


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("land")
    SampleSource(trades_per_day=5_000).land(LandingRequest(part(), (), dest, lambda m: None))
    (path,) = dest.iterdir()
    return path


def messages(path):
    with gzip.open(path, "rt") as fh:
        for line in fh:
            ts, payload = line.rstrip("\n").split(" ", 1)
            yield ts, json.loads(payload)


def test_lines_are_tardis_replay_lines_with_combined_stream_envelopes(landed):
    assert landed.name == "binance-futures_2024-01-02_BTCUSDT.ndjson.gz"
    seen = {}
    for ts, msg in messages(landed):
        assert len(ts) == 28 and ts.endswith("Z") and ts.startswith("2024-01-02T")
        seen.setdefault(msg["stream"], msg["data"])
    assert set(seen) == {"btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@markPrice@1s", "btcusdt@depth@0ms",
                         "btcusdt@depthSnapshot"}  # fmt: skip
    assert set(seen["btcusdt@depth@0ms"]) == {"e", "E", "T", "s", "U", "u", "pu", "b", "a"}
    assert set(seen["btcusdt@depthSnapshot"]) == {"lastUpdateId", "E", "T", "bids", "asks"}
    trade, mark = seen["btcusdt@aggTrade"], seen["btcusdt@markPrice@1s"]
    assert set(seen["btcusdt@bookTicker"]) == {"e", "u", "s", "b", "B", "a", "A", "T", "E"}
    assert set(trade) == {"e", "E", "a", "s", "p", "q", "f", "l", "T", "m"} and trade["e"] == "aggTrade"
    assert set(mark) == {"e", "E", "s", "p", "P", "i", "r", "T"} and mark["e"] == "markPriceUpdate"
    assert len(mark["p"].split(".")[1]) == 8 and len(mark["r"].split(".")[1]) == 8


def test_same_seed_same_bytes_other_day_other_data():
    a = generate_day(part(), 3_000, seed=1)
    assert a.equals(generate_day(part(), 3_000, seed=1))
    assert not a.equals(generate_day(part(day=dt.date(2024, 1, 3)), 3_000, seed=1))
    assert not a.equals(generate_day(part("ETHUSDT"), 3_000, seed=1))


def test_trades_realistic_and_on_the_grid(landed):
    p = part()
    trades = SampleSource().read_frame(TRADES, [landed], p)
    assert 3_000 < trades.height < 8_000
    ticks = trades["price"] / 0.1
    assert (ticks - ticks.round()).abs().max() < 1e-6
    steps = trades["size"] / 0.001
    assert (steps - steps.round()).abs().max() < 1e-6
    sides = trades["aggressor_side"].value_counts()
    assert set(sides["aggressor_side"].cast(pl.String)) == {"BUYER", "SELLER"}
    assert trades["trade_id"].n_unique() == trades.height
    assert trades["ts_event"].min() >= p.start and trades["ts_init"].max() < p.end
    # Bursts: many trades within 10 ms of the previous one, and long quiet stretches too.
    gaps_ms = trades["ts_event"].diff().dt.total_milliseconds().drop_nulls()
    assert (gaps_ms <= 10).mean() > 0.5 and gaps_ms.max() > 60_000


def test_aggressor_follows_buyer_is_maker(landed):
    """m: true means the buyer was the maker, so the aggressor (taker) SOLD."""
    by_id = {str(d["a"]): d["m"] for _, d in ((t, m["data"]) for t, m in messages(landed)) if d.get("e") == "aggTrade"}
    trades = SampleSource().read_frame(TRADES, [landed], part())
    got = dict(zip(trades["trade_id"], trades["aggressor_side"].cast(pl.String), strict=True))
    assert got == {k: ("SELLER" if m else "BUYER") for k, m in by_id.items()}


def test_mark_every_second_near_trades_and_funding_every_8h(landed):
    p = part()
    marks = SampleSource().read_frame(MARK_PRICES, [landed], p)
    assert marks.height == 86_400
    assert marks["ts_event"].dt.truncate("1s").n_unique() == 86_400
    rates = SampleSource().read_frame(FUNDING_RATES, [landed], p)
    next_times = rates["next_funding_time"].unique().sort().to_list()
    assert next_times == [p.start + dt.timedelta(hours=h) for h in (8, 16, 24)]
    assert rates["rate"].abs().max() < 0.03
    # One row per change: no two consecutive rows carry the same (rate, next time).
    same = (rates["rate"] == rates["rate"].shift(1)) & (
        rates["next_funding_time"] == rates["next_funding_time"].shift(1)
    )
    assert not same.fill_null(False).any()


def test_trades_print_at_the_quoted_side(landed):
    """Each trade is preceded by a quote: a buyer takes the ask, a seller hits the bid."""
    trades = binance_ws.read_kind(TRADES, [landed])
    quotes = binance_ws.read_kind(QUOTES, [landed])
    assert quotes.height == trades.height > 1000
    assert (quotes["bid_price"] < quotes["ask_price"]).all()
    # Quote i is received 1 us before trade i; both come sorted by receive time.
    joined = pl.concat([trades, quotes.rename(lambda c: f"q_{c}")], how="horizontal")
    assert (joined["q_ts_init"] < joined["ts_init"]).all()
    joined = joined.rename({"q_bid_price": "bid_price", "q_ask_price": "ask_price"})
    buyer = joined["aggressor_side"] == "BUYER"
    assert (joined.filter(buyer)["price"] == joined.filter(buyer)["ask_price"]).all()
    assert (joined.filter(~buyer)["price"] == joined.filter(~buyer)["bid_price"]).all()
    assert buyer.any() and (~buyer).any()


def test_the_book_agrees_with_the_quotes(landed):
    """The L2 book built from the sample's depth snapshot and updates starts from the snapshot,
    is never crossed, and after each batch its best bid and ask are the prices of the quote
    generated with the batch's last update (the j-th depthUpdate goes with the j-th bookTicker)."""
    from hedgegrid_assets.frames import ORDER_BOOK_DELTAS
    from hedgegrid_assets.frames.book_replay import book_tops

    updates, quotes = [], []
    for _, m in messages(landed):
        d = m["data"]
        if d.get("e") == "depthUpdate":
            updates.append(d["u"])
        elif d.get("e") == "bookTicker":
            quotes.append((float(d["b"]), float(d["a"])))
    assert len(updates) == len(quotes) > 3_000
    deltas = SampleSource().read_frame(ORDER_BOOK_DELTAS, [landed], part())
    assert deltas.row(0, named=True)["action"] == 4  # CLEAR: the snapshot starts the day
    tops = book_tops(deltas)
    assert not tops.crossed.any()
    index = {u: j for j, u in enumerate(updates)}
    seq = deltas.get_column("sequence").gather(tops.batch_rows).to_list()
    got = [(b, a) for b, a in zip(tops.best_bid.tolist(), tops.best_ask.tolist(), strict=True)]
    want = [quotes[index[u]] if u in index else None for u in seq]
    assert sum(w is None for w in want) <= 1  # the snapshot's own batch, if it stands alone
    assert [g for g, w in zip(got, want, strict=True) if w is not None] == [w for w in want if w is not None]

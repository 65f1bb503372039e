"""The message parser reads every line shape a recorder or vendor produces."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from hedgegrid_assets.formats.binance import messages
from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, TRADES

T0 = 1_704_153_600_000  # 2024-01-02 00:00:00 UTC in ms
TRADE = {
    "e": "trade",
    "E": T0 + 5,
    "T": T0 + 3,
    "s": "BTCUSDT",
    "t": 42,
    "p": "42000.10",
    "q": "0.005",
    "X": "MARKET",
    "m": True,
}
AGG = {
    "e": "aggTrade",
    "E": T0 + 9,
    "s": "BTCUSDT",
    "a": 7,
    "p": "42000.20",
    "q": "0.010",
    "f": 1,
    "l": 2,
    "T": T0 + 8,
    "m": False,
}
MARK = {
    "e": "markPriceUpdate",
    "E": T0 + 1000,
    "s": "BTCUSDT",
    "p": "42001.12345678",
    "r": "0.00010000",
    "T": T0 + 8 * 3_600_000,
}


def write(tmp_path, lines):
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return [path]


def ts(ms_offset: int, extra_100ns: int = 0) -> str:
    t = dt.datetime.fromtimestamp((T0 + ms_offset) / 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + str(extra_100ns) + "Z"


def test_three_line_shapes(tmp_path):
    files = write(
        tmp_path,
        [
            f"{ts(20, 3)} " + json.dumps({"stream": "btcusdt@aggTrade", "data": AGG}),  # Tardis replay
            json.dumps({"stream": "btcusdt@aggTrade", "data": AGG | {"a": 8, "m": True}}),  # envelope
            json.dumps(AGG | {"a": 9}),  # bare payload
            "",  # blank line
        ],
    )
    trades = binance_ws.read_kind(TRADES, files)
    # Sorted by ts_init (the receive time), stable for equal times.
    assert trades["trade_id"].to_list() == ["8", "9", "7"]
    first = trades.filter(pl.col("trade_id") == "7").row(0, named=True)
    # ts_init is the replay line's receive time to 100 ns; ts_event is the trade time T.
    ns = trades.filter(pl.col("trade_id") == "7").select(pl.col("ts_init", "ts_event").dt.epoch("ns")).row(0)
    assert ns == ((T0 + 20) * 1_000_000 + 300, (T0 + 8) * 1_000_000)
    assert first["aggressor_side"] == "BUYER" and first["price"] == 42000.2 and first["size"] == 0.01
    # Without a receive time, ts_init falls back to the event time E.
    bare = trades.filter(pl.col("trade_id") == "9").row(0, named=True)
    assert bare["ts_init"] == dt.datetime(2024, 1, 2, 0, 0, 0, 9_000, tzinfo=dt.UTC)
    assert trades.filter(pl.col("trade_id") == "8")["aggressor_side"].cast(pl.String).to_list() == ["SELLER"]


def test_trade_stream_and_non_market_trades(tmp_path):
    files = write(tmp_path, [json.dumps(TRADE), json.dumps(TRADE | {"t": 43, "X": "INSURANCE_FUND"}), json.dumps(AGG)])
    trades = binance_ws.read_kind(TRADES, files, trade_event="trade")
    assert trades["trade_id"].to_list() == ["42"]
    assert trades["aggressor_side"].cast(pl.String).to_list() == ["SELLER"]


def test_mark_prices_and_funding_changes(tmp_path):
    lines = [json.dumps({"stream": "btcusdt@markPrice@1s", "data": MARK | {"E": T0 + 1000 * i}}) for i in range(1, 4)]
    lines.append(json.dumps(MARK | {"E": T0 + 4000, "r": "0.00012000"}))
    lines.append(json.dumps(MARK | {"E": T0 + 5000, "r": ""}))  # delivery contracts send an empty rate
    files = write(tmp_path, lines)
    marks = binance_ws.read_kind(MARK_PRICES, files)
    assert marks.height == 5 and marks["value"][0] == 42001.12345678
    rates = binance_ws.read_kind(FUNDING_RATES, files)
    assert rates["rate"].to_list() == [0.0001, 0.00012]
    assert rates["next_funding_time"].to_list() == [dt.datetime(2024, 1, 2, 8, tzinfo=dt.UTC)] * 2


def test_receive_time_prefix_with_an_offset():
    times = ["2024-01-02T00:00:00.0010000Z", "2024-01-02T00:00:00.0010000+00:00", "2024-01-02T01:00:00.001+01:00",
             "2024-01-02 00:00:00.001", "2024-01-02 00:00:00.001Z", "2024-01-02 02:00:00.001+02:00",
             "1704153600.001"]  # fmt: skip
    got = pl.DataFrame({"t": times}).select(messages.receive_time(pl.col("t")).dt.epoch("ns")).to_series().to_list()
    assert got == [(T0 + 1) * 1_000_000] * len(times)


def test_each_kind_decodes_only_its_lines_but_a_broken_line_fails_every_kind(tmp_path):
    import pytest

    good = [
        json.dumps({"stream": "btcusdt@aggTrade", "data": AGG}),
        json.dumps({"stream": "btcusdt@markPrice", "data": MARK}),
    ]
    files = write(tmp_path, good)
    assert binance_ws.read_kind(TRADES, files).height == 1 and binance_ws.read_kind(MARK_PRICES, files).height == 1
    # Cut before the event name: no kind's text filter would pick it, yet it must not pass unseen.
    broken = write(tmp_path, [*good, '{"stream":"btcusdt@aggTr'])
    for kind in (TRADES, MARK_PRICES, FUNDING_RATES):
        with pytest.raises(pl.exceptions.ComputeError):
            binance_ws.read_kind(kind, broken)

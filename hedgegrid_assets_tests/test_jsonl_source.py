"""The recorded-WebSocket JSONL source: every line shape, counts of what is skipped, and the
catalog's values equal the recording's, through Dagster and through `hedgegrid build`.

`Truth` (also used by test_csv_sources.py and test_bad_inputs.py) is a small synthetic day of
trades, mark prices and funding rates that each test renders into a real file shape.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, TRADES, PartitionContext
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import LandingRequest
from hedgegrid_assets.sources.jsonl import JsonlSource
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings

DAY = dt.date(2024, 1, 2)
MS_DAY = 86_400_000
SIDES = {AggressorSide.BUYER: "BUYER", AggressorSide.SELLER: "SELLER", AggressorSide.NO_AGGRESSOR: "NO_AGGRESSOR"}


def ms_of(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1000


def iso_us(us: int, digits: int = 7) -> str:
    """Epoch µs -> '2024-01-02T00:00:00.1234560Z' (Tardis replay: 7 fractional digits)."""
    t = dt.datetime.fromtimestamp(us // 1_000_000, dt.UTC)
    frac = f"{us % 1_000_000:06d}" + "0" * (digits - 6)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"


@dataclass
class Truth:
    """One synthetic day of one symbol, in exchange units (ms times, µs receive times, decimal text)."""

    day: dt.date
    symbol: str
    trades: list[dict] = field(default_factory=list)  # T, recv_us, p, q, m (buyer is maker), a (id)
    marks: list[dict] = field(default_factory=list)  # E, recv_us, p, r, T (next funding)
    funding: list[dict] = field(default_factory=list)  # the changes of (r, T) among the marks

    @property
    def start_ms(self) -> int:
        return ms_of(self.day)


def make_truth(
    day: dt.date = DAY, symbol: str = "BTCUSDT", n_trades: int = 300, mark_every_s: int = 60, seed: int = 1
) -> Truth:
    rng = random.Random(f"{seed}-{day}-{symbol}")
    truth = Truth(day, symbol)
    start = truth.start_ms
    tick, step, base = {"BTCUSDT": (1, 3, 420_000), "ETHUSDT": (2, 3, 230_000)}[symbol]
    ticks = base
    recv = start * 1000
    times = sorted(rng.sample(range(start + 5, start + MS_DAY - 60_000), n_trades))
    for i, t in enumerate(times):
        ticks += rng.choice([-2, -1, 0, 1, 2])
        recv = max(recv + 1, t * 1000 + rng.randint(1_000, 40_000))
        truth.trades.append({
            "T": t, "recv_us": recv, "p": f"{ticks / 10**tick:.{tick}f}",
            "q": f"{rng.randint(1, 2_000) / 10**step:.{step}f}", "m": rng.random() < 0.5, "a": (day.toordinal() % 1000) * 100_000 + i,
        })  # fmt: skip
    last = 0
    for k in range(MS_DAY // (mark_every_s * 1000)):
        e = start + k * mark_every_s * 1000 + rng.randint(0, 5)
        while last + 1 < len(times) and times[last + 1] <= e:
            last += 1
        price = float(truth.trades[last]["p"]) * (1 + rng.uniform(-2e-4, 2e-4))
        hour = (e - start) // 3_600_000
        rate_units = 10_000 + 150 * ((hour * 7) % 5) - 300  # changes every hour
        nxt = start + ((e - start) // 28_800_000 + 1) * 28_800_000
        truth.marks.append(
            {"E": e, "recv_us": e * 1000 + 2_000, "p": f"{price:.8f}", "r": f"{rate_units / 1e8:.8f}", "T": nxt}
        )
    prev = None
    for mk in truth.marks:
        if (mk["r"], mk["T"]) != prev:
            truth.funding.append(mk)
            prev = (mk["r"], mk["T"])
    return truth


# -- JSONL rendering ---------------------------------------------------------------------------


def trade_payload(tr: dict, symbol: str) -> dict:
    return {"e": "aggTrade", "E": tr["T"] + 2, "a": tr["a"], "s": symbol, "p": tr["p"], "q": tr["q"],
            "f": tr["a"] * 3, "l": tr["a"] * 3 + 1, "T": tr["T"], "m": tr["m"]}  # fmt: skip


def mark_payload(mk: dict, symbol: str) -> dict:
    return {"e": "markPriceUpdate", "E": mk["E"], "s": symbol, "p": mk["p"], "P": mk["p"], "i": mk["p"],
            "r": mk["r"], "T": mk["T"]}  # fmt: skip


def jsonl_lines(truth: Truth, shape: str = "replay") -> list[tuple[int, str, str]]:
    """(receive µs, line, its shape) sorted by receive time; shape: replay | envelope | bare | mixed."""
    sym = truth.symbol
    out = []
    items = [(tr["recv_us"], "aggTrade", trade_payload(tr, sym)) for tr in truth.trades]
    items += [(mk["recv_us"], "markPrice@1s", mark_payload(mk, sym)) for mk in truth.marks]
    items.sort(key=lambda x: x[0])
    for i, (recv, stream, payload) in enumerate(items):
        s = shape if shape != "mixed" else ("replay", "envelope", "bare")[i % 3]
        env = json.dumps({"stream": f"{sym.lower()}@{stream}", "data": payload}, separators=(",", ":"))
        if s == "replay":
            out.append((recv, f"{iso_us(recv)} {env}", s))
        elif s == "envelope":
            out.append((recv, env, s))
        else:
            out.append((recv, json.dumps(payload, separators=(",", ":")), s))
    return out


def write_text(path: Path, lines: list[str], gz: bool | None = None) -> Path:
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz if gz is not None else path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1))
    return path


# -- expectations: what the catalog must hold --------------------------------------------------


def expected_trades(truth: Truth, has_recv) -> list[tuple]:
    """(price, size, side, id, ts_event ns, ts_init ns) sorted by ts_init; has_recv(trade) -> bool."""
    rows = []
    for tr in truth.trades:
        ts_init = tr["recv_us"] * 1000 if has_recv(tr) else (tr["T"] + 2) * 1_000_000
        rows.append(
            (
                float(tr["p"]),
                float(tr["q"]),
                "SELLER" if tr["m"] else "BUYER",
                str(tr["a"]),
                tr["T"] * 1_000_000,
                ts_init,
            )
        )
    return sorted(rows, key=lambda r: r[5])


def catalog_trades(catalog: Path, symbol: str = "BTCUSDT") -> list[tuple]:
    ticks = ParquetDataCatalog(str(catalog)).trade_ticks(instrument_ids=[f"{symbol}-PERP.BINANCE"])
    return [(float(t.price.as_decimal()), float(t.size.as_decimal()), SIDES[t.aggressor_side], t.trade_id.value,
             t.ts_event, t.ts_init) for t in ticks]  # fmt: skip


def catalog_marks(catalog: Path, symbol: str = "BTCUSDT") -> list[tuple]:
    marks = ParquetDataCatalog(str(catalog)).query(MarkPriceUpdate, identifiers=[f"{symbol}-PERP.BINANCE"])
    return [(float(m.value.as_decimal()), m.ts_event, m.ts_init) for m in marks]


def catalog_funding(catalog: Path, symbol: str = "BTCUSDT", interval: int = 480) -> list[tuple]:
    """(rate, next_funding_ns, ts_event, ts_init) of each update; every one carries the interval."""
    rates = ParquetDataCatalog(str(catalog)).query(FundingRateUpdate, identifiers=[f"{symbol}-PERP.BINANCE"])
    assert [r.interval for r in rates] == [interval] * len(rates)
    return [(float(r.rate), r.next_funding_ns, r.ts_event, r.ts_init) for r in rates]


def part_for(day: dt.date = DAY, symbol: str = "BTCUSDT") -> PartitionContext:
    s = Settings()
    return PartitionContext(day, instrument_for(symbol, s), s.checks)


def land(source, dest: Path, day: dt.date = DAY, symbol: str = "BTCUSDT") -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    source.land(LandingRequest(part_for(day, symbol), (), dest, lambda m: None))
    return sorted(p for p in dest.rglob("*") if p.is_file())


def check_evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


# -- tests ---------------------------------------------------------------------------------


def test_every_line_shape_and_counts(tmp_path):
    truth = make_truth(n_trades=60, mark_every_s=600)
    lines = jsonl_lines(truth, "mixed")
    text = [ln for _, ln, _ in lines]
    # A recorder's extras: a subscription reply, a bookTicker, blank lines, a truncated last line.
    text.insert(0, '{"result":null,"id":1}')
    # An event no kind reads (its 'a' is a list, an aggTrade's 'a' an integer): counted, skipped.
    text.insert(
        5,
        json.dumps(
            {
                "stream": "btcusdt@depth",
                "data": {"e": "depthUpdate", "s": "BTCUSDT", "b": [["42000.1", "1"]], "a": [], "pu": 1},
            }
        ),
    )
    text.insert(9, "")
    text.insert(20, "   ")
    text.append('2024-01-02T23:59:59.9990000Z {"stream":"btcusdt@aggTrade","data":{"e":"aggTr')
    rec = write_text(tmp_path / "rec" / "btcusdt-2024-01-02.jsonl.gz", text)
    cfg = write_config(
        tmp_path / "ws.json",
        {
            "base_path": "rec",
            "files": {k: {"file_path": "{symbol_lower}-{date}.jsonl.gz"} for k in ("trades", "mark", "funding")},
        },
    )
    source = JsonlSource(config_path=str(cfg))
    landed = land(source, tmp_path / "landing")
    assert [p.name for p in landed] == ["btcusdt-2024-01-02.jsonl.gz"]  # one file carries every kind: landed once
    assert landed[0].read_bytes() == rec.read_bytes()

    from hedgegrid_assets.sources.jsonl import _decoded

    _decoded.cache_clear()
    trades, notes = source.read_frame_with_notes(TRADES, landed, part_for())
    assert notes["blank_lines"] == 2 and notes["truncated_last_lines"] == 1
    assert notes["unknown_events_by_type"] == {"no 'e' field": 1, "depthUpdate": 1}
    # Replay lines take their prefix as ts_init; envelope and bare lines fall back to E.
    replay_ids = {
        json.loads(ln.split(" ", 1)[1])["data"]["a"] for _, ln, s in lines if s == "replay" and "aggTrade" in ln
    }
    got = [(r["price"], r["size"], r["aggressor_side"], r["trade_id"], r["ts_event"], r["ts_init"])
           for r in trades.with_columns(pl.col("ts_event", "ts_init").dt.epoch("ns"), pl.col("aggressor_side").cast(pl.String)).iter_rows(named=True)]  # fmt: skip
    assert got == expected_trades(truth, lambda tr: tr["a"] in replay_ids)

    marks = source.read_frame(MARK_PRICES, landed, part_for())
    assert sorted(marks["value"].to_list()) == sorted(float(m["p"]) for m in truth.marks)
    funding = source.read_frame(FUNDING_RATES, landed, part_for())
    assert funding["rate"].to_list() == [float(f["r"]) for f in truth.funding]
    assert funding["next_funding_time"].dt.epoch("ms").to_list() == [f["T"] for f in truth.funding]
    assert (_decoded.cache_info().misses, _decoded.cache_info().hits) == (1, 2)  # decoded once for 3 kinds
    assert source.read_frame_with_notes(FUNDING_RATES, landed, part_for())[1] == notes  # counts given to every kind


def test_receive_time_fields_and_epoch_prefixes(tmp_path):
    tr = make_truth(n_trades=3, mark_every_s=3600).trades
    payloads = [trade_payload(t, "BTCUSDT") for t in tr]
    lines = [
        json.dumps({"local_timestamp": tr[0]["recv_us"], "stream": "btcusdt@aggTrade", "data": payloads[0]}),
        json.dumps({"recv_ts": iso_us(tr[1]["recv_us"], 6), **payloads[1]}),
        f"{tr[2]['recv_us'] * 1000} " + json.dumps(payloads[2]),  # epoch ns prefix
    ]
    rec = write_text(tmp_path / "r.jsonl", lines)
    cfg = write_config(tmp_path / "c.json", {"base_path": str(tmp_path), "files": {"trades": {"file_path": "r.jsonl"}}})
    source = JsonlSource(config_path=str(cfg))
    frame = source.read_frame(TRADES, [rec], part_for())
    assert frame["ts_init"].dt.epoch("us").to_list() == [t["recv_us"] for t in tr]
    assert source.read_frame(MARK_PRICES, [rec], part_for()).height == 0  # not configured: empty


def test_multi_day_recording_through_dagster_with_duplicates_quarantined(tmp_path):
    """One file spanning two days (no {date}): each partition takes its ts_init day; a replayed
    duplicate is quarantined and counted; the catalog equals the recording."""
    days = [DAY, DAY + dt.timedelta(days=1)]
    truths = [make_truth(d, n_trades=200, mark_every_s=120) for d in days]
    lines = [ln for t in truths for ln in jsonl_lines(t, "replay")]
    text = [ln for _, ln, _ in sorted(lines)]
    dup_index = next(i for i, ln in enumerate(text) if "aggTrade" in ln and "2024-01-02T1" in ln)
    text.insert(dup_index + 3, text[dup_index])  # a reconnect replays a trade
    text.insert(
        10, '{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT","E":1704153600000,"k":{"t":1704153540000}}}'
    )
    write_text(tmp_path / "rec" / "btcusdt.jsonl", text)
    cfg = write_config(tmp_path / "ws.json", {"base_path": str(tmp_path / "rec"), "land": "hardlink",
                                              "files": {k: {"file_path": "{symbol_lower}.jsonl"} for k in ("trades", "mark", "funding")}})  # fmt: skip
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="jsonl", source_config=cfg)
    instance = make_instance(tmp_path)
    results = build(settings, instance, [partition_key(d, "BTCUSDT") for d in days])
    first = check_evaluations(results[str(partition_key(DAY, "BTCUSDT"))])
    assert first["trades_schema"].passed
    assert first["trades_schema"].metadata["quarantined_by_reason"].value == {"duplicate trade_id": 1}
    assert (
        check_evaluations(results[str(partition_key(days[1], "BTCUSDT"))])["trades_schema"]
        .metadata["quarantined_rows"]
        .value
        == 0
    )
    assert first["funding_rates_settlements_covered"].passed
    # What the parser skipped reaches the run's log as a warning.
    run = results[str(partition_key(DAY, "BTCUSDT"))]
    warnings = [e.user_message for e in instance.all_logs(run.run_id) if e.level >= 30]
    assert any("messages of other event types (kline: 1)" in w for w in warnings), warnings

    cat = settings.catalog_path
    expected = [row for t in truths for row in expected_trades(t, lambda tr: True)]
    assert catalog_trades(cat) == expected
    marks = [(float(m["p"]), m["E"] * 1_000_000, m["recv_us"] * 1000) for t in truths for m in t.marks]
    assert catalog_marks(cat) == marks
    funding = [
        (float(f["r"]), f["T"] * 1_000_000, f["E"] * 1_000_000, f["recv_us"] * 1000) for t in truths for f in t.funding
    ]
    assert catalog_funding(cat) == funding


def test_recording_through_dagster_asset_materialize(tmp_path):
    from hedgegrid_assets_tests.test_cli import dagster_materialize

    truth = make_truth(n_trades=100, mark_every_s=600)
    write_text(tmp_path / "rec" / "btcusdt.jsonl", [ln for _, ln, _ in jsonl_lines(truth, "envelope")])
    ws = write_config(tmp_path / "ws.json", {"base_path": str(tmp_path / "rec"), "files": {
        k: {"file_path": "{symbol_lower}.jsonl"} for k in ("trades", "mark", "funding")}})  # fmt: skip
    dagster_materialize(
        tmp_path,
        "--partition",
        "2024-01-02|BTCUSDT",
        HEDGEGRID_SOURCE="jsonl",
        HEDGEGRID_SOURCE_CONFIG=str(ws),
        HEDGEGRID_SYMBOLS="BTCUSDT",
    )
    cat = tmp_path / "d" / "catalog"
    # Envelope lines carry no receive time: ts_init is the event time E (trade time + 2 ms here).
    assert catalog_trades(cat) == expected_trades(truth, lambda tr: False)
    assert catalog_marks(cat) == [(float(m["p"]), m["E"] * 1_000_000, m["E"] * 1_000_000) for m in truth.marks]
    assert catalog_funding(cat) == [
        (float(f["r"]), f["T"] * 1_000_000, f["E"] * 1_000_000, f["E"] * 1_000_000) for f in truth.funding
    ]


def test_gzip_cut_short_is_read_up_to_where_it_ends(tmp_path):
    """A recorder killed mid-write leaves a gzip stream without its end: not fatal for a recording."""
    truth = make_truth(n_trades=400, mark_every_s=3600)
    whole = gzip.compress(("\n".join(ln for _, ln, _ in jsonl_lines(truth)) + "\n").encode())
    rec = tmp_path / "rec.jsonl.gz"
    rec.write_bytes(whole[: len(whole) * 2 // 3])
    cfg = write_config(
        tmp_path / "c.json", {"base_path": str(tmp_path), "files": {"trades": {"file_path": "rec.jsonl.gz"}}}
    )
    frame, notes = JsonlSource(config_path=str(cfg)).read_frame_with_notes(TRADES, [rec], part_for())
    assert notes["truncated_gzip_streams"] == 1 and notes["truncated_last_lines"] <= 1
    assert 0 < frame.height < len(truth.trades)
    ids = frame["trade_id"].to_list()
    assert ids == [str(tr["a"]) for tr in truth.trades][: len(ids)]  # a clean prefix of the recording


def test_a_recording_with_book_tickers_and_depth_updates(tmp_path):
    """bookTicker lines become quotes; depthUpdate and kline lines (no kind reads them yet) are
    counted per type under the partition, and never fail it."""
    from hedgegrid_assets_tests.test_cli import BIN, run

    truth = make_truth(n_trades=200, mark_every_s=600)
    lines = [ln for _, ln, _ in jsonl_lines(truth, "replay")]
    g = ms_of(DAY)
    quotes = []
    for i in range(1, 41):
        b, a = f"{42000 + i}.1", f"{42000 + i}.3"
        quotes.append((g + i * 1000, b, a))
        lines.append(f"{iso_us((g + i * 1000) * 1000 + 700)} " + json.dumps({"stream": "btcusdt@bookTicker", "data": {
            "e": "bookTicker", "u": 1000 + i, "s": "BTCUSDT", "b": b, "B": "1.500", "a": a, "A": "0.250",
            "T": g + i * 1000, "E": g + i * 1000 + 1}}))  # fmt: skip
    for i in range(3):
        lines.append(f"{iso_us((g + 5000 + i) * 1000)} " + json.dumps({"stream": "btcusdt@depth", "data": {
            "e": "depthUpdate", "E": g + 5000 + i, "T": g + 5000 + i, "s": "BTCUSDT", "U": i, "u": i + 1, "pu": i - 1,
            "b": [["42000.0", "1.000"]], "a": [["42000.5", "0"]]}}))  # fmt: skip
    lines.append(f"{iso_us((g + 60_000) * 1000)} " + json.dumps({"stream": "btcusdt@kline_1m", "data": {
        "e": "kline", "E": g + 60_000, "s": "BTCUSDT", "k": {"t": g, "i": "1m", "o": "42000.0"}}}))  # fmt: skip
    lines.sort()
    write_text(tmp_path / "rec" / "btcusdt-2024-01-02.jsonl.gz", lines)
    cfg = write_config(tmp_path / "ws.json", {"base_path": str(tmp_path / "rec"), "files": {
        k: {"file_path": "{symbol_lower}-{date}.jsonl.gz"} for k in ("trades", "quotes", "mark", "funding")}})  # fmt: skip
    proc = run([str(BIN / "hedgegrid"), "build", "--source", "jsonl", "--config", str(cfg), "--symbol", "BTCUSDT",
                "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / "d")], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "quotes=40" in proc.stdout
    assert "events no kind reads: depthUpdate 3, kline 1" in proc.stdout, proc.stdout
    got = ParquetDataCatalog(str(tmp_path / "d" / "catalog")).quote_ticks(instrument_ids=["BTCUSDT-PERP.BINANCE"])
    assert [
        (q.ts_event // 1_000_000, str(q.bid_price), str(q.ask_price), str(q.bid_size), str(q.ask_size)) for q in got
    ] == [(t, b, a, "1.500", "0.250") for t, b, a in quotes]
    assert [q.ts_init for q in got] == [(t * 1000 + 700) * 1000 for t, _, _ in quotes]

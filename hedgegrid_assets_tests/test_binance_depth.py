"""L2 book deltas from recorded Binance USDT-M `depthUpdate` streams and REST depth snapshots:
JSONL recordings and Tardis replays (`depth` + `depthSnapshot`), Binance's sync rules, gaps
reported with where they were, re-sync from the next snapshot, and the book Nautilus builds
from our deltas equal to the messages replayed naively."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import polars as pl
import pytest
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import InstrumentId

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.frames import ORDER_BOOK_DELTAS, TRADES, PartitionContext
from hedgegrid_assets.frames.book_codes import ADD, ASK, BID, CLEAR, DELETE, F_LAST, F_SNAPSHOT, UPDATE
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.jsonl import JsonlSource, _decoded
from hedgegrid_assets.sources.tardis import TardisSource
from hedgegrid_assets_tests.fake_tardis import FakeTardis

DAY = dt.date(2024, 1, 2)
T0 = 1_704_153_600_000  # 2024-01-02 00:00 UTC, ms
MS = 1_000_000
KEY = "td-depth-key-0f3e"
IID = "BTCUSDT-PERP.BINANCE"


def part(day: dt.date = DAY) -> PartitionContext:
    s = Settings()
    return PartitionContext(day, instrument_for("BTCUSDT", s), s.checks)


def iso_ms(ms: int, extra_us: int = 0) -> str:
    """Epoch ms -> a Tardis replay timestamp ('2024-01-02T00:00:00.0130000Z', 100 ns digits)."""
    t = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ms % 1000) * 1000 + extra_us:06d}0Z"


def update(U: int, u: int, pu: int, E: int, b=(), a=()) -> dict:
    return {"e": "depthUpdate", "E": E, "T": E - 1, "s": "BTCUSDT", "U": U, "u": u, "pu": pu,
            "b": [list(x) for x in b], "a": [list(x) for x in a]}  # fmt: skip


def snapshot(last_id: int, E: int, bids, asks) -> dict:
    """The REST /fapi/v1/depth response."""
    return {
        "lastUpdateId": last_id,
        "E": E,
        "T": E - 1,
        "bids": [list(x) for x in bids],
        "asks": [list(x) for x in asks],
    }


def recorded(payload: dict, recv_ms: int) -> str:
    """A recorder's line: the combined-stream envelope (a snapshot bare) with its receive time."""
    if "lastUpdateId" in payload:
        return json.dumps(payload | {"receive_time": recv_ms * 1000})  # epoch µs
    return json.dumps({"stream": "btcusdt@depth", "data": payload, "receive_time": recv_ms * 1000})


def replay_line(payload: dict, recv_ms: int) -> str:
    """A Tardis replay line: `depth` channel, or the generated `depthSnapshot` envelope."""
    if "lastUpdateId" in payload:
        env = {"stream": "btcusdt@depthSnapshot", "generated": True, "data": payload}
    else:
        env = {"stream": "btcusdt@depth", "data": payload}
    return f"{iso_ms(recv_ms)} {json.dumps(env, separators=(',', ':'))}"


def jsonl_source(tmp_path: Path, lines: list[str], name: str = "rec.jsonl") -> tuple[JsonlSource, Path]:
    rec = tmp_path / "rec" / name
    rec.parent.mkdir(parents=True, exist_ok=True)
    rec.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "ws.json"
    cfg.write_text(json.dumps({"base_path": str(rec.parent), "files": {"deltas": {"file_path": name}}}))
    _decoded.cache_clear()
    return JsonlSource(config_path=str(cfg)), rec


def rows(frame: pl.DataFrame) -> list[tuple]:
    """(action, side, price, size, flags, sequence, ts_event ms, ts_init ms)."""
    f = frame.with_columns(pl.col("ts_event", "ts_init").dt.epoch("ns") // MS - T0)
    return list(f.select("action", "side", "price", "size", "flags", "sequence", "ts_event", "ts_init").iter_rows())


SNAP_BIDS = [("42000.0", "1.500"), ("41999.9", "2.000")]
SNAP_ASKS = [("42000.1", "0.500"), ("42000.2", "0.700")]


def test_snapshot_then_updates_exact_rows(tmp_path):
    lines = [
        recorded(update(90, 95, 89, T0 + 1, b=[("42000.0", "9.000")]), T0 + 2),  # older than the snapshot: dropped
        recorded(update(96, 101, 95, T0 + 5, b=[("42000.0", "1.200")]), T0 + 6),  # buffered: applied after it
        recorded(snapshot(100, T0 + 10, SNAP_BIDS, SNAP_ASKS), T0 + 13),
        recorded(update(102, 104, 101, T0 + 14, b=[("42000.0", "0")], a=[("42000.1", "0.800")]), T0 + 15),
        recorded(update(105, 105, 104, T0 + 14, a=[("42000.3", "1.000")]), T0 + 16),  # same E: one batch
        recorded(update(106, 107, 105, T0 + 20), T0 + 21),  # no level changed: no row, the chain goes on
        recorded(update(108, 110, 107, T0 + 21, b=[("41999.8", "3.000")]), T0 + 22),
    ]
    source, rec = jsonl_source(tmp_path, lines)
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert rows(frame) == [
        (CLEAR, 0, 0.0, 0.0, F_SNAPSHOT, 100, 10, 13),
        (ADD, BID, 42000.0, 1.5, 0, 100, 10, 13),
        (ADD, BID, 41999.9, 2.0, 0, 100, 10, 13),
        (ADD, ASK, 42000.1, 0.5, 0, 100, 10, 13),
        (ADD, ASK, 42000.2, 0.7, F_LAST, 100, 10, 13),
        # Received before the snapshot, newer than it: applied when it arrives (its ts_init).
        (UPDATE, BID, 42000.0, 1.2, F_LAST, 101, 5, 13),
        (DELETE, BID, 42000.0, 0.0, 0, 104, 14, 15),
        (UPDATE, ASK, 42000.1, 0.8, 0, 104, 14, 15),
        (UPDATE, ASK, 42000.3, 1.0, F_LAST, 105, 14, 16),
        (UPDATE, BID, 41999.8, 3.0, F_LAST, 110, 21, 22),
    ]
    assert frame.schema == ORDER_BOOK_DELTAS.empty_frame().schema
    assert {k: v for k, v in notes.items() if k.startswith("book")} == {
        "book": {"snapshots": 1, "updates": 6, "updates_applied": 5}, "book_sequence_gaps": 0,
        "book_updates_discarded_before_first_snapshot": 1, "book_updates_discarded_older_than_snapshot": 0,
        "book_updates_discarded_repeated": 0, "book_updates_discarded_after_gap": 0,
    }  # fmt: skip
    ORDER_BOOK_DELTAS.schema(part()).validate(frame)


def gap_lines() -> list[str]:
    return [
        recorded(snapshot(100, T0 + 10, SNAP_BIDS, SNAP_ASKS), T0 + 11),
        recorded(update(95, 101, 94, T0 + 12, b=[("42000.0", "1.000")]), T0 + 13),
        recorded(update(102, 103, 101, T0 + 14, a=[("42000.1", "0.300")]), T0 + 15),
        recorded(update(102, 103, 101, T0 + 14, a=[("42000.1", "0.300")]), T0 + 16),  # replayed: dropped
        recorded(update(106, 107, 105, T0 + 20, b=[("41999.9", "5.000")]), T0 + 21),  # 104-105 lost: the gap
        recorded(update(108, 109, 107, T0 + 22, b=[("41999.8", "4.000")]), T0 + 23),  # not applied ...
        recorded(update(110, 111, 109, T0 + 24, b=[("41999.7", "4.000")]), T0 + 25),  # ... nor this one
        recorded(snapshot(110, T0 + 30, [("41999.9", "6.000")], [("42000.4", "1.000")]), T0 + 31),
        recorded(update(112, 113, 111, T0 + 32, a=[("42000.4", "0")]), T0 + 33),
    ]


def test_a_gap_is_reported_and_the_book_resynced_from_the_next_snapshot(tmp_path):
    source, rec = jsonl_source(tmp_path, gap_lines())
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert rows(frame) == [
        (CLEAR, 0, 0.0, 0.0, F_SNAPSHOT, 100, 10, 11),
        (ADD, BID, 42000.0, 1.5, 0, 100, 10, 11),
        (ADD, BID, 41999.9, 2.0, 0, 100, 10, 11),
        (ADD, ASK, 42000.1, 0.5, 0, 100, 10, 11),
        (ADD, ASK, 42000.2, 0.7, F_LAST, 100, 10, 11),
        (UPDATE, BID, 42000.0, 1.0, F_LAST, 101, 12, 13),
        (UPDATE, ASK, 42000.1, 0.3, F_LAST, 103, 14, 15),
        # 107 and 109 are not applied: the book resumes from the next snapshot ...
        (CLEAR, 0, 0.0, 0.0, F_SNAPSHOT, 110, 30, 31),
        (ADD, BID, 41999.9, 6.0, 0, 110, 30, 31),
        (ADD, ASK, 42000.4, 1.0, F_LAST, 110, 30, 31),
        # ... with 111, received before it and newer than it, then what follows.
        (UPDATE, BID, 41999.7, 4.0, F_LAST, 111, 24, 31),
        (DELETE, ASK, 42000.4, 0.0, F_LAST, 113, 32, 33),
    ]
    assert notes["book_sequence_gaps"] == 1
    assert notes["book_gaps"] == [{
        "at": "2024-01-02T00:00:00.020000+00:00", "received": "2024-01-02T00:00:00.021000+00:00",
        "file": "rec.jsonl", "line": 5, "previous_u": 103, "pu": 105, "u": 107,
        "reason": "pu 105 != previous u 103", "not_applied": 2,
        "resynced_at": "2024-01-02T00:00:00.030000+00:00",
    }]  # fmt: skip
    assert notes["book_updates_discarded_after_gap"] == 2  # 107 and 109 (111 came back with the snapshot)
    assert notes["book_updates_discarded_repeated"] == 1 and notes["book"]["updates_applied"] == 4


def test_a_gap_without_a_later_snapshot_leaves_the_rest_unapplied(tmp_path):
    source, rec = jsonl_source(tmp_path, gap_lines()[:7])
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert frame["sequence"].to_list() == [100] * 5 + [101, 103]
    (gap,) = notes["book_gaps"]
    assert gap["resynced_at"] is None and gap["not_applied"] == 3 and gap["line"] == 5


def test_the_first_update_must_hold_or_follow_the_snapshot(tmp_path):
    lines = [
        recorded(snapshot(100, T0 + 10, SNAP_BIDS, SNAP_ASKS), T0 + 11),
        recorded(update(101, 102, 100, T0 + 12, b=[("42000.0", "1.000")]), T0 + 13),  # pu == lastUpdateId: follows it
    ]
    source, rec = jsonl_source(tmp_path, lines)
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert frame["sequence"].to_list()[-1] == 102 and notes["book_sequence_gaps"] == 0
    lines[1] = recorded(update(103, 104, 102, T0 + 12, b=[("42000.0", "1.000")]), T0 + 13)  # 101-102 missing
    source, rec = jsonl_source(tmp_path, lines)
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert frame.height == 5 and notes["book_sequence_gaps"] == 1
    assert (
        notes["book_gaps"][0]["reason"]
        == "the first update after the snapshot does not follow it (U 103 > lastUpdateId 100 and pu 102 != 100)"
    )


def test_updates_without_a_snapshot_fail_naming_the_file(tmp_path):
    lines = [
        recorded(update(96 + 2 * i, 97 + 2 * i, 95 + 2 * i, T0 + i, b=[("42000.0", "1.000")]), T0 + i + 1)
        for i in range(3)
    ]
    source, rec = jsonl_source(tmp_path, lines, "btcusdt-2024-01-02.jsonl")
    with pytest.raises(SourceError) as err:
        source.read_frame(ORDER_BOOK_DELTAS, [rec], part())
    assert str(err.value) == (
        "btcusdt-2024-01-02.jsonl: depthUpdate messages but no depth snapshot to start the book from; "
        "record a REST /fapi/v1/depth snapshot line first (see README)"
    )


def test_a_level_that_is_not_numbers_fails_naming_the_line(tmp_path):
    lines = gap_lines()[:2] + [recorded(update(102, 103, 101, T0 + 14, a=[("42000.1", "x")]), T0 + 15)]
    source, rec = jsonl_source(tmp_path, lines)
    with pytest.raises(SourceError, match=r"rec.jsonl line 3: a depth level that is not \[price, quantity\] numbers"):
        source.read_frame(ORDER_BOOK_DELTAS, [rec], part())


def test_without_deltas_in_the_config_depth_lines_stay_events_no_kind_reads(tmp_path):
    source, rec = jsonl_source(tmp_path, gap_lines())
    cfg = tmp_path / "trades.json"
    cfg.write_text(json.dumps({"base_path": str(rec.parent), "files": {"trades": {"file_path": rec.name}}}))
    _decoded.cache_clear()
    _, notes = JsonlSource(config_path=str(cfg)).read_frame_with_notes(TRADES, [rec], part())
    assert notes["unknown_events_by_type"] == {"depthSnapshot": 2, "depthUpdate": 7}


# -- Nautilus's own book over our deltas ----------------------------------------------------------


def simulate(seed: int, n: int, start_ms: int, first_id: int = 5_000) -> tuple[list[tuple[dict, int]], list[tuple]]:
    """A random book: a snapshot, then `n` diff updates (a few levels each, deletes of absent
    levels included) -> ((payload, receive ms) in order, the best (bid, ask) after each message)."""
    rng = random.Random(seed)
    mid = 420_000  # ticks of 0.1
    book = {BID: {}, ASK: {}}
    for i in range(1, 15):
        book[BID][mid - i] = rng.randint(1, 5_000)
        book[ASK][mid + i] = rng.randint(1, 5_000)

    def level(ticks: int, lots: int) -> tuple[str, str]:
        return f"{ticks / 10:.1f}", f"{lots / 1000:.3f}"

    def best() -> tuple:
        return (max(book[BID]) / 10 if book[BID] else None, min(book[ASK]) / 10 if book[ASK] else None)

    out, tops = [], []
    last = first_id
    snap = snapshot(last, start_ms, [level(p, q) for p, q in sorted(book[BID].items(), reverse=True)],
                    [level(p, q) for p, q in sorted(book[ASK].items())])  # fmt: skip
    out.append((snap, start_ms + 1))
    tops.append(best())
    t = start_ms + 1
    for _ in range(n):
        t += rng.randint(1, 300)
        changes = {BID: {}, ASK: {}}
        for _ in range(rng.randint(1, 5)):
            side = rng.choice([BID, ASK])
            offset = rng.randint(1, 20)
            ticks = mid - offset if side == BID else mid + offset
            lots = 0 if rng.random() < 0.35 else rng.randint(1, 5_000)
            changes[side][ticks] = lots
        for side in (BID, ASK):
            for ticks, lots in changes[side].items():
                if lots:
                    book[side][ticks] = lots
                else:
                    book[side].pop(ticks, None)
        U, u = last + 1, last + rng.randint(1, 4)
        payload = update(U, u, last, t, b=[level(p, q) for p, q in changes[BID].items()],
                         a=[level(p, q) for p, q in changes[ASK].items()])  # fmt: skip
        recv = max(out[-1][1] + 1, t + rng.randint(1, 20))  # one connection: received in order
        out.append((payload, recv))
        tops.append(best())
        last = u
    return out, tops


def nautilus_tops(frame: pl.DataFrame) -> list[tuple]:
    """Best bid and ask of a Nautilus L2 book after each batch (F_LAST) of our deltas."""
    book = OrderBook(InstrumentId.from_str(IID), BookType.L2_MBP)
    tops = []
    for delta in ORDER_BOOK_DELTAS.to_nautilus(frame, part().instrument):
        book.apply_delta(delta)
        if delta.flags & F_LAST:
            bid, ask = book.best_bid_price(), book.best_ask_price()
            tops.append((None if bid is None else float(bid), None if ask is None else float(ask)))
    return tops


def test_nautilus_book_over_our_deltas_equals_the_messages_replayed(tmp_path):
    messages, tops = simulate(seed=7, n=400, start_ms=T0 + 1000)
    source, rec = jsonl_source(tmp_path, [recorded(p, r) for p, r in messages])
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert notes["book"]["updates_applied"] == 400 and notes["book_sequence_gaps"] == 0
    assert set(frame["action"].unique().to_list()) == {CLEAR, ADD, UPDATE, DELETE}
    assert nautilus_tops(frame) == tops


# -- Tardis replays ---------------------------------------------------------------------------------


def test_tardis_replay_depth_and_snapshots(tmp_path):
    from hedgegrid_assets_tests.test_tardis_source import land

    messages, tops = simulate(seed=3, n=300, start_ms=T0 + 60_000)
    lines = [replay_line(p, r) for p, r in messages]
    # A gap at the 150th update, then Tardis's next snapshot (a reconnect) of the book as it is.
    later, later_tops = simulate(seed=4, n=100, start_ms=T0 + 3_600_000, first_id=9_000)
    lines = lines[:150] + lines[151:] + [replay_line(p, r) for p, r in later]
    with FakeTardis(api_key=KEY) as server:
        server.add_lines(pl.DataFrame({"line": lines}))
        source = TardisSource(api_key=KEY, endpoint=server.url, book=True)
        path, _ = land(source, part(), tmp_path)
        asked = {f["channel"] for r in server.requests for f in r.filters}
    assert asked == {"aggTrade", "bookTicker", "depth", "depthSnapshot", "markPrice"}
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [path], part())
    assert notes["book"]["snapshots"] == 2 and notes["book_sequence_gaps"] == 1
    (gap,) = notes["book_gaps"]
    assert gap["file"] == path.name and gap["line"] == 151 and gap["not_applied"] == 300 - 150
    assert gap["resynced_at"] == dt.datetime.fromtimestamp((T0 + 3_600_000) / 1000, dt.UTC).isoformat()
    # Up to the gap the book is the replayed one; after it, the next snapshot's.
    assert nautilus_tops(frame) == tops[:150] + later_tops
    # ts_init is the replay line's local timestamp.
    first_update = frame.filter(pl.col("action") == UPDATE).row(0, named=True)
    assert first_update["ts_init"] == dt.datetime.fromtimestamp(messages[1][1] / 1000, dt.UTC)
    assert TardisSource(api_key=KEY).read_frame(ORDER_BOOK_DELTAS, [path], part()).height == 0  # book off: not offered


# -- through `hedgegrid build` ----------------------------------------------------------------------


def test_hedgegrid_build_from_a_recording_with_a_gap(tmp_path):
    """Trades and the book from one recording: the catalog holds our deltas (flags and sequence
    included); the gap is a WARN check naming the file and line, and the run's summary says it."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from hedgegrid_assets_tests.test_cli import BIN, run
    from hedgegrid_assets_tests.test_jsonl_source import jsonl_lines, make_truth

    messages, _ = simulate(seed=5, n=300, start_ms=T0 + 60_000)
    depth = [replay_line(p, r) for i, (p, r) in enumerate(messages) if i != 121]  # the 121st update lost
    after = messages[122][0]  # the first update after the gap
    lines = sorted([ln for _, ln, _ in jsonl_lines(make_truth(n_trades=200, mark_every_s=600), "replay")] + depth)
    rec = tmp_path / "rec" / "btcusdt-2024-01-02.jsonl"
    rec.parent.mkdir(parents=True)
    rec.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "ws.json"
    cfg.write_text(json.dumps({"base_path": str(rec.parent), "files": {
        k: {"file_path": "{symbol_lower}-{date}.jsonl"} for k in ("trades", "mark", "funding", "deltas")}}))  # fmt: skip
    gap_line = lines.index(depth[121]) + 1
    proc = run([str(BIN / "hedgegrid"), "build", "--source", "jsonl", "--config", str(cfg), "--symbol", "BTCUSDT",
                "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / "d")], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "order_book_deltas: skipped while parsing (book sequence gaps: 1, book updates discarded after gap: 179)"
        in proc.stdout
    )
    assert (f"warning: order_book_deltas_sequence on order_book_deltas: 1 sequence gap(s), the first at "
            f"{dt.datetime.fromtimestamp(after['E'] / 1000, dt.UTC).isoformat()} (btcusdt-2024-01-02.jsonl "
            f"line {gap_line}): pu {after['pu']} != previous u {messages[120][0]['u']}; 179 update(s) not "
            "applied, no later snapshot") in proc.stdout, proc.stdout  # fmt: skip

    source, path = jsonl_source(tmp_path / "direct", depth)
    want = source.read_frame(ORDER_BOOK_DELTAS, [path], part())
    got = ParquetDataCatalog(str(tmp_path / "d" / "catalog")).order_book_deltas(instrument_ids=[IID])
    assert [(int(d.action), int(d.order.side), float(str(d.order.price)), float(str(d.order.size)), d.flags, d.sequence,
             d.ts_event, d.ts_init) for d in got] == list(want.with_columns(
                 pl.col("ts_event", "ts_init").dt.epoch("ns")).iter_rows())  # fmt: skip
    assert want["sequence"].max() == messages[120][0]["u"] and len(got) > 300


def test_hedgegrid_build_fails_clearly_without_a_snapshot(tmp_path):
    from hedgegrid_assets_tests.test_cli import BIN, run

    messages, _ = simulate(seed=6, n=20, start_ms=T0 + 60_000)
    source, rec = jsonl_source(tmp_path, [replay_line(p, r) for p, r in messages[1:]], "btcusdt-2024-01-02.jsonl")
    proc = run([str(BIN / "hedgegrid"), "build", "--source", "jsonl", "--config", str(tmp_path / "ws.json"), "--symbol",
                "BTCUSDT", "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / "d"),
                "--allow-empty"], tmp_path)  # fmt: skip
    assert proc.returncode != 0
    assert (
        "btcusdt-2024-01-02.jsonl: depthUpdate messages but no depth snapshot to start the book from; record a "
        "REST /fapi/v1/depth snapshot line first (see README)"
    ) in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_a_recording_spanning_days_starts_each_day_with_the_book_as_it_stood(tmp_path):
    """No {date} in the path: the book is built over the file; the second day has no snapshot
    of its own and starts with the book at 00:00 (CLEAR + ADDs), then its own updates."""
    midnight = T0 + 86_400_000
    messages, tops = simulate(seed=9, n=200, start_ms=midnight - 20_000)
    source, rec = jsonl_source(tmp_path, [recorded(p, r) for p, r in messages], "btcusdt.jsonl")
    day2 = part(DAY + dt.timedelta(days=1))
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], day2)
    before = sum(1 for _, r in messages[1:] if r < midnight)
    assert 0 < before < 200 and notes["book"] == {
        "snapshots": 0,
        "updates": 200 - before,
        "updates_applied": 200 - before,
    }
    first = frame.filter(pl.col("ts_init") == dt.datetime.fromtimestamp(midnight / 1000, dt.UTC))
    assert first["action"].to_list()[0] == CLEAR and set(first["action"].to_list()[1:]) == {ADD}
    assert first["flags"].to_list()[0] == F_SNAPSHOT and first["flags"].to_list()[-1] == F_LAST
    assert first["sequence"].unique().to_list() == [messages[before][0]["u"]]
    assert frame["ts_init"].min() >= dt.datetime.fromtimestamp(midnight / 1000, dt.UTC)
    assert nautilus_tops(frame) == tops[before:]  # the day's book from its first batch on
    day1, _ = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert nautilus_tops(day1) == tops[: before + 1]
    assert source.read_frame(ORDER_BOOK_DELTAS, [rec], part(DAY + dt.timedelta(days=2))).height == 0  # after its end


def test_hedgegrid_build_from_tardis_with_the_book(tmp_path):
    """HEDGEGRID_TARDIS__BOOK=true: the replay asks for depth + depthSnapshot, the catalog holds
    the deltas next to the trades, and the sequence check passes."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from hedgegrid_assets.sources.sample import generate_day
    from hedgegrid_assets_tests.test_cli import BIN, run

    messages, tops = simulate(seed=8, n=200, start_ms=T0 + 120_000)
    with FakeTardis(api_key=KEY) as server:
        sample = generate_day(part(), 500, seed=2, book=False)  # trades, quotes, marks: the book is ours alone
        server.add_lines(sample.filter(~pl.col("line").str.contains("@depth", literal=True)))
        server.add_lines(pl.DataFrame({"line": [replay_line(p, r) for p, r in messages]}))
        proc = run([str(BIN / "hedgegrid"), "build", "--source", "tardis", "--symbol", "BTCUSDT", "--start", "2024-01-02",
                    "--end", "2024-01-03", "--data-dir", str(tmp_path / "d")],
                   tmp_path, TARDIS_API_KEY=KEY, TARDIS_ENDPOINT=server.url, HEDGEGRID_TARDIS__BOOK="true")  # fmt: skip
        asked = {f["channel"] for r in server.requests for f in r.filters}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"depth", "depthSnapshot"} <= asked and "order_book_deltas=" in proc.stdout
    deltas = ParquetDataCatalog(str(tmp_path / "d" / "catalog")).order_book_deltas(instrument_ids=[IID])
    assert len(deltas) > 400 and deltas[0].action.name == "CLEAR" and deltas[-1].sequence == messages[-1][0]["u"]
    book = OrderBook(InstrumentId.from_str(IID), BookType.L2_MBP)
    got = []
    for delta in deltas:  # Nautilus's book over the catalog's own records
        book.apply_delta(delta)
        if delta.flags & F_LAST:
            got.append((float(book.best_bid_price()), float(book.best_ask_price())))
    assert got == tops


def test_updates_without_pu_chain_by_U(tmp_path):
    """Early recordings have no `pu`: an update continues the chain when U == previous u + 1."""

    def no_pu(payload: dict) -> dict:
        return {k: v for k, v in payload.items() if k != "pu"}

    lines = [
        recorded(snapshot(100, T0 + 10, SNAP_BIDS, SNAP_ASKS), T0 + 11),
        recorded(no_pu(update(99, 101, 0, T0 + 12, b=[("42000.0", "1.000")])), T0 + 13),
        recorded(no_pu(update(102, 103, 0, T0 + 14, b=[("42000.0", "2.000")])), T0 + 15),
        recorded(no_pu(update(105, 106, 0, T0 + 16, b=[("42000.0", "3.000")])), T0 + 17),  # 104 missing
    ]
    source, rec = jsonl_source(tmp_path, lines)
    frame, notes = source.read_frame_with_notes(ORDER_BOOK_DELTAS, [rec], part())
    assert frame["sequence"].to_list()[-2:] == [101, 103] and notes["book_sequence_gaps"] == 1
    assert notes["book_gaps"][0]["reason"] == "U 105 != previous u 103 + 1 (no pu)"

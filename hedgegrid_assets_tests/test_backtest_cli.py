"""`hedgegrid backtest` as users run it: a real subprocess over a catalog built through Dagster
(the session's sample catalog, 2 days x BTCUSDT/ETHUSDT), its numbers checked against what the
test works out on its own from the catalog (read with nautilus_trader alone) and the fills:

- fills happen, each at its grid level, every level on the tick grid;
- fees = sum over fills of the instrument's maker/taker rate x notional;
- funding: one settlement per settlement time the catalog's funding updates announce inside the
  range (3 a day for 8-hourly funding), each applied once; its payment = -position at S (from the
  fills) x last mark price known at S x the last rate announced for S;
- the account balance = start + realized PnL (average cost, from the fills) - fees + funding,
  which holds only if every payment reached the balance exactly once;
- the PNG is a PNG; the printed numbers are the API's (`run_backtest`) numbers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
import subprocess
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.backtest.run import GridParams, run_backtest

from .conftest import DAYS

BIN = Path(sys.executable).parent
SYMBOL = "BTCUSDT"
INSTRUMENT_ID = "BTCUSDT-PERP.BINANCE"
START, END = DAYS[0], DAYS[-1] + dt.timedelta(days=1)  # end exclusive
NS = 1_000_000_000


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * NS


def hedgegrid(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # Only the test's settings: the session fixture points HEDGEGRID_SETTINGS_FILE at nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "TARDIS_"))}
    env["HEDGEGRID_SETTINGS_FILE"] = os.environ["HEDGEGRID_SETTINGS_FILE"]
    return subprocess.run(
        [str(BIN / "hedgegrid"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def cli(built, tmp_path_factory):
    """`hedgegrid backtest` over the whole sample range, picture in the data dir's default place."""
    proc = hedgegrid("backtest", "--symbol", SYMBOL, "--start", str(START), "--end", str(END),
                     "--data-dir", str(built.settings.data_dir), cwd=tmp_path_factory.mktemp("cwd"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture(scope="module")
def api(built):
    """The same backtest through the API, in this process (deterministic: the same run)."""
    return run_backtest(built.catalog, SYMBOL, START, END, GridParams())


@pytest.fixture(scope="module")
def catalog(built):
    return ParquetDataCatalog(str(built.catalog))


def _level_of(fill, grid) -> Decimal:
    """The price a fill of level k's order must have: its own level for an entry, the next one
    toward the first price for an exit."""
    k = fill.level
    if fill.leg.endswith("entry"):
        return grid[k]
    return grid[k + 1] if k < 0 else grid[k - 1]


def test_fills_at_grid_levels_on_the_tick_grid(api, catalog):
    (instrument,) = catalog.instruments(instrument_ids=[INSTRUMENT_ID])
    tick = instrument.price_increment.as_decimal()
    assert len(api.fills) > 0
    assert {f.side for f in api.fills} == {"BUY", "SELL"}
    levels = sorted(api.grid.values())
    assert len(levels) == 2 * api.params.levels + 1 and api.grid[0] == api.first_price
    assert all(p % tick == 0 for p in levels)  # on the tick grid
    assert {b - a for a, b in zip(levels, levels[1:])} == {api.step}  # evenly spaced, a whole number of ticks
    assert api.step == round(api.first_price * Decimal("0.002") / tick) * tick  # 20 bps, rounded to ticks
    for fill in api.fills:
        assert fill.price == _level_of(fill, api.grid), fill
        assert fill.liquidity == "MAKER"  # post-only: every order rested on the book
    # a first trade of the range is the grid's centre
    first = catalog.trade_ticks(instrument_ids=[INSTRUMENT_ID], start=_ns(START), end=_ns(END) - 1)[0]
    assert first.price.as_decimal() == api.first_price


def test_fees_are_the_venue_rate_times_notional(api, catalog):
    (instrument,) = catalog.instruments(instrument_ids=[INSTRUMENT_ID])
    rate = {"MAKER": instrument.maker_fee, "TAKER": instrument.taker_fee}
    expected = [f.price * f.qty * rate[f.liquidity] for f in api.fills]
    for fill, fee in zip(api.fills, expected):
        assert abs(fill.commission - fee) <= Decimal("1e-8"), fill  # Nautilus rounds each to USDT's 8 decimals
    assert round(api.fees, 2) == round(sum(expected), 2)
    assert api.fees > 0


def _position_at(fills, ts: int) -> Decimal:
    return sum((f.qty if f.side == "BUY" else -f.qty for f in fills if f.ts_event <= ts), Decimal(0))


def test_funding_settled_once_per_settlement_from_position_mark_and_rate(api, catalog):
    start_ns, end_ns = _ns(START), _ns(END)
    updates = [
        u for u in catalog.query(FundingRateUpdate, identifiers=[INSTRUMENT_ID]) if start_ns <= u.ts_init < end_ns
    ]
    marks = [m for m in catalog.query(MarkPriceUpdate, identifiers=[INSTRUMENT_ID]) if start_ns <= m.ts_init < end_ns]
    settlements = sorted({u.next_funding_ns for u in updates if u.ts_init < u.next_funding_ns <= end_ns})
    days = (END - START).days
    assert len(settlements) == 3 * days  # 8-hourly funding: 08:00, 16:00 and the next 00:00 of each day
    assert [s.settlement_ns for s in api.funding] == settlements  # each once, in order
    assert max(sum(u.next_funding_ns == s for u in updates) for s in settlements) > 1  # several updates each
    nonzero = 0
    for event in api.funding:
        s = event.settlement_ns
        announced = [u for u in updates if u.next_funding_ns == s]
        rate = Decimal(str(max(announced, key=lambda u: u.ts_init).rate))
        mark = max((m for m in marks if m.ts_init <= s), key=lambda m: m.ts_init)
        qty = _position_at(api.fills, s)
        payment = (-qty * mark.value.as_decimal() * rate).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)
        assert (event.rate, event.position_qty, event.price, event.updates) == (
            rate,
            qty,
            mark.value.as_decimal(),
            len(announced),
        )
        assert event.payment == payment
        if qty and rate:
            nonzero += 1
            # a long pays a positive rate, a short receives it
            assert (event.payment < 0) == ((qty > 0) == (rate > 0))
            assert event.applied_to_account
    assert nonzero > 0
    assert api.funding_total == sum(e.payment for e in api.funding)


def _realized_average_cost(fills) -> Decimal:
    """Realized PnL of a netted position, average cost (Nautilus's NETTING positions)."""
    qty, avg, realized = Decimal(0), Decimal(0), Decimal(0)
    for f in sorted(fills, key=lambda f: f.ts_event):
        signed = f.qty if f.side == "BUY" else -f.qty
        if qty == 0 or (qty > 0) == (signed > 0):  # opening or adding
            avg = (avg * abs(qty) + f.price * abs(signed)) / (abs(qty) + abs(signed))
            qty += signed
            continue
        closed = min(abs(signed), abs(qty))
        realized += closed * (f.price - avg) * (1 if qty > 0 else -1)
        rest = abs(signed) - closed
        qty += signed
        if rest:  # flipped through flat: the rest opens at this price
            avg = f.price
        elif qty == 0:
            avg = Decimal(0)
    return realized


def test_balance_holds_realized_fees_and_every_funding_payment_once(api):
    realized = _realized_average_cost(api.fills)
    assert abs(api.realized_pnl - realized) < Decimal("0.01")
    expected = api.starting_balance + realized - api.fees + sum(e.payment for e in api.funding)
    assert abs(api.final_balance - expected) < Decimal("0.01")
    assert api.funding_total != 0 and abs(api.funding_total) > Decimal("0.01")  # a double or missing payment shows
    assert api.final_equity - api.starting_balance == api.net_pnl
    assert api.final_position_qty == _position_at(api.fills, _ns(END))
    # the equity curve: one sample a minute over the range, ending on its last instant
    assert len(api.equity) >= 24 * 60 * (END - START).days - 60 and api.equity[-1].ts == _ns(END)


def test_hedging_each_level_its_own_position(api, built):
    """--oms HEDGING (Binance's hedge mode): the same fills and funding as NETTING; realized PnL
    is each level's own, one step per unit its exit closed; the balance still adds up."""
    hedged = run_backtest(built.catalog, SYMBOL, START, END, GridParams(oms_type="HEDGING"))
    assert hedged.oms_type == "HEDGING"
    key = lambda f: (f.ts_event, f.side, f.price, f.qty, f.level, f.leg)  # noqa: E731
    assert [key(f) for f in hedged.fills] == [key(f) for f in api.fills]
    assert [(e.settlement_ns, e.position_qty, e.payment) for e in hedged.funding] == [
        (e.settlement_ns, e.position_qty, e.payment) for e in api.funding
    ]
    per_level = sum((f.qty * api.step for f in hedged.fills if f.leg.endswith("exit")), Decimal(0))
    assert abs(hedged.realized_pnl - per_level) < Decimal("0.01")
    expected = hedged.starting_balance + per_level - hedged.fees + hedged.funding_total
    assert abs(hedged.final_balance - expected) < Decimal("0.01")
    assert abs(hedged.net_pnl - api.net_pnl) < Decimal("0.01")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_equity_picture_saved_under_the_data_dir(built, cli):
    (line,) = [x for x in cli.stdout.splitlines() if x.startswith("equity curve: ")]
    path = Path(line.removeprefix("equity curve: "))
    assert path == built.settings.data_dir / "backtests" / f"{SYMBOL}_{START}_{END}.png"
    assert path.stat().st_size > 10_000
    width, height = _png_size(path)
    assert width > 500 and height > 300
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def _printed(stdout: str, label: str) -> Decimal:
    (m,) = re.findall(rf"^\s*{re.escape(label)}:\s+([+-]?[\d,]+\.\d+) USDT", stdout, re.M)
    return Decimal(m.replace(",", ""))


def test_printed_numbers_are_the_api_numbers(cli, api):
    out = cli.stdout
    (fills,) = re.findall(r"^fills: (\d+) \((\d+) buys, (\d+) sells\)", out, re.M)
    assert tuple(map(int, fills)) == (
        len(api.fills),
        sum(f.side == "BUY" for f in api.fills),
        sum(f.side == "SELL" for f in api.fills),
    )
    assert _printed(out, "realized PnL") == api.realized_pnl
    assert _printed(out, "fees") == -api.fees
    assert _printed(out, "funding") == api.funding_total
    assert _printed(out, "net PnL") == round(api.net_pnl, 8)
    assert _printed(out, "unrealized PnL") == round(api.unrealized_pnl, 8)
    assert f"{len(api.funding)} settlement(s)" in out and "applied to the account balance" in out
    rows = re.findall(r"^  (\d{4}-\d\d-\d\d \d\d:\d\d)\s+(\S+)\s+(\S+)\s+(\S+)\s+([+-]\S+)\s+(\d+)$", out, re.M)
    assert [(Decimal(r), Decimal(q), Decimal(p), Decimal(pay)) for _, r, q, p, pay, _ in rows] == [
        (e.rate, e.position_qty, e.price, e.payment) for e in api.funding
    ]
    assert [t for t, *_ in rows] == [
        dt.datetime.fromtimestamp(e.settlement_ns / NS, dt.UTC).strftime("%Y-%m-%d %H:%M") for e in api.funding
    ]


def test_step_in_ticks_and_output_folder(built, tmp_path):
    out = tmp_path / "pictures"
    day = DAYS[-1]
    proc = hedgegrid("backtest", "--symbol", SYMBOL, "--start", str(day), "--end", str(day + dt.timedelta(days=1)),
                     "--catalog", str(built.catalog), "--output", str(out), "--levels", "4", "--step-ticks", "500",
                     "--size", "0.005", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "step 50.0 (500 ticks)" in proc.stdout
    (m,) = re.findall(r"levels (\S+) \.\. (\S+)$", proc.stdout, re.M)
    assert Decimal(m[1]) - Decimal(m[0]) == 8 * Decimal("50.0")
    assert "3 settlement(s)" in proc.stdout
    picture = out / f"{SYMBOL}_{day}_{day + dt.timedelta(days=1)}.png"
    assert f"equity curve: {picture}" in proc.stdout and _png_size(picture)[0] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--symbol", "SOLUSDT", "--start", "2024-01-01", "--end", "2024-01-02"],
         r"unknown symbol SOLUSDT: .* has no instrument SOLUSDT-PERP\.BINANCE \(it has: BTCUSDT, ETHUSDT\); build it first with hedgegrid build --symbol SOLUSDT"),
        (["--symbol", "BTCUSDT", "--start", "2023-06-01", "--end", "2023-06-03"],
         r"no trades for BTCUSDT between 2023-06-01 and 2023-06-03 \(end exclusive\) in \S+: build it first with hedgegrid build "
         r"--symbol BTCUSDT --start 2023-06-01 --end 2023-06-03 --catalog"),
        (["--symbol", "BTCUSDT", "--start", "2024-01-02", "--end", "2024-01-01"], r"--end 2024-01-01 must be after --start 2024-01-02"),
        (["--symbol", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02", "--size", "0.0005"], r"not a multiple of BTCUSDT's size step 0\.001"),
    ],
    ids=["unknown-symbol", "empty-range", "end-before-start", "size-off-step"],
)  # fmt: skip
def test_clear_errors(built, tmp_path, args, message):
    proc = hedgegrid("backtest", *args, "--catalog", str(built.catalog), "--output", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()

"""The Tardis.dev replay source against a real local HTTP server speaking the replay API.

Fixtures are the sample source's replay lines (exact Binance/Tardis shapes) served minute by
minute by `fake_tardis.FakeTardis`; expectations are computed from those lines with plain
json here, independently of the columnar parser.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import socket
import types
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from tardis_client import data_downloader

from hedgegrid_assets.definitions import build_definitions
from hedgegrid_assets.errors import SourceError, TransientSourceError
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, QUOTES, TRADES, PartitionContext
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.landing.raw_zone import land_atomically
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import LandingRequest
from hedgegrid_assets.sources.registry import build_source
from hedgegrid_assets.sources.sample import generate_day
from hedgegrid_assets.sources.tardis import TardisSource
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
from hedgegrid_assets_tests.fake_tardis import FakeTardis
from hedgegrid_assets_tests.test_cli import BIN, dagster_materialize, run

KEY = "td-SECRET-4f9c2b7e81d0"
WRONG_KEY = "td-WRONG-91aa03c5e6f2"
DAY = dt.date(2024, 1, 2)
FREE_DAY = dt.date(2024, 2, 1)  # first of a month: Tardis serves it without a key
IID = "BTCUSDT-PERP.BINANCE"
FILTERS = [{"channel": c, "symbols": ["btcusdt"]} for c in ("aggTrade", "bookTicker", "markPrice")]


def part(symbol: str = "BTCUSDT", day: dt.date = DAY) -> PartitionContext:
    s = Settings()
    return PartitionContext(day, instrument_for(symbol, s), s.checks)


def as_trade_channel(lines: pl.DataFrame) -> pl.DataFrame:
    """aggTrade messages -> `trade` channel messages (id `t`, type `X`), ids prefixed with 9."""
    line = pl.col("line")
    return lines.filter(line.str.contains("@aggTrade", literal=True)).select(
        line.str.replace('@aggTrade","data":{"e":"aggTrade"', '@trade","data":{"e":"trade"', literal=True)
        .str.replace(',"a":', ',"t":9', literal=True)
        .str.replace(r',"f":\d+,"l":\d+', "")
        .str.replace(',"m":', ',"X":"MARKET","m":', literal=True)
    )


def depth_updates(lines: pl.DataFrame) -> pl.DataFrame:
    """Some depthUpdate messages (a channel the source must not ask for) at markPrice times."""
    marks = lines.filter(pl.col("line").str.contains("@markPrice", literal=True)).gather_every(97)
    return marks.select(
        pl.concat_str(
            pl.col("line").str.slice(0, 29),
            pl.lit(
                '{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,'
                '"b":[["1.0","1"]],"a":[]}}'
            ),
        ).alias("line")
    )


@pytest.fixture(scope="module")
def days() -> dict[str, pl.DataFrame]:
    btc = generate_day(part(), 2_000, seed=11, book=False)
    free = generate_day(part(day=FREE_DAY), 500, seed=13, book=False)
    return {
        "btc": btc,
        "btc_trade": as_trade_channel(btc),
        "eth": generate_day(part("ETHUSDT"), 500, seed=12, book=False),
        "depth": depth_updates(btc),
        "free": free,
        "free_trade": as_trade_channel(free),
    }


def disconnected_after(days) -> str:
    """The free day's line after which the fake server puts a disconnect marker."""
    return days["free"].filter(pl.col("line").str.contains("@markPrice", literal=True))["line"][100]


@pytest.fixture(scope="module")
def expected(days) -> tuple[list, list, list]:
    """The BTCUSDT day's trades, mark prices and funding rates, from its lines."""
    return expected_from_input(days["btc"]["line"].to_list())


@pytest.fixture(scope="module")
def module_server(days):
    with FakeTardis(api_key=KEY) as server:
        for frame in days.values():
            server.add_lines(frame)
        server.add_disconnect_after(disconnected_after(days))
        yield server


@pytest.fixture
def server(module_server):
    module_server.reset()
    return module_server


def fast_client_sleeps(monkeypatch) -> list[float]:
    """Record the client's retry sleeps (61 s after a 429, 2**n s otherwise) without waiting them."""
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay, result=None):
        delays.append(delay)
        return await real_sleep(0, result)

    fast = types.ModuleType("asyncio")
    fast.__dict__.update(vars(asyncio))
    fast.sleep = sleep
    monkeypatch.setattr(data_downloader, "asyncio", fast)
    return delays


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    return fast_client_sleeps(monkeypatch)


@dataclass
class Landed:
    path: Path
    logs: list[str]
    requests: list
    sleeps: list[float]


@pytest.fixture(scope="module")
def landed(module_server, tmp_path_factory) -> Landed:
    """The BTCUSDT day landed once, through two 429s at 00:05 and a 500 at 13:20."""
    module_server.reset()
    module_server.fail(5, 429, 429)
    module_server.fail(800, 500)
    with pytest.MonkeyPatch.context() as mp:
        sleeps = fast_client_sleeps(mp)
        path, logs = land(TardisSource(api_key=KEY, endpoint=module_server.url), part(), tmp_path_factory.mktemp("l"))
    return Landed(path, logs, list(module_server.requests), sleeps)


@pytest.fixture(scope="module")
def free_landed(module_server, tmp_path_factory) -> Landed:
    """The free first day of a month, replayed without a key and with the `trade` channel."""
    module_server.reset()
    source = TardisSource(endpoint=module_server.url, trade_channel="trade")
    path, logs = land(source, part(day=FREE_DAY), tmp_path_factory.mktemp("free"))
    return Landed(path, logs, list(module_server.requests), [])


def land(source: TardisSource, p: PartitionContext, root: Path) -> tuple[Path, list[str]]:
    logs: list[str] = []
    landing = land_atomically(
        root / "tardis" / str(p.day) / p.instrument.symbol,
        "tardis",
        lambda tmp: source.land(LandingRequest(p, (), tmp, logs.append)),
    )
    (path,) = landing.paths
    return path, logs


def raw_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return fh.read().split("\n")[:-1]


def local_ns(ts: str) -> int:
    """'2024-01-02T00:01:25.2870607Z' -> epoch ns, exactly (100 ns resolution)."""
    assert len(ts) == 28 and ts[-1] == "Z"
    seconds = dt.datetime.fromisoformat(ts[:19]).replace(tzinfo=dt.UTC).timestamp()
    return int(seconds) * 10**9 + int(ts[20:27]) * 100


def expected_from_input(lines: list[str]) -> tuple[list, list, list]:
    """What the catalog must hold, read from the replay lines with json (not the parser)."""
    ms = 1_000_000
    trades, marks, funding, last = [], [], [], None
    for line in lines:
        if not line:
            continue
        ts, payload = line.split(" ", 1)
        d = json.loads(payload)["data"]
        if d["e"] in ("aggTrade", "trade"):
            trade_id = str(d["a"] if "a" in d else d["t"])
            trades.append((local_ns(ts), d["T"] * ms, d["p"], d["q"], "SELLER" if d["m"] else "BUYER", trade_id))
        elif d["e"] == "markPriceUpdate":
            marks.append((local_ns(ts), d["E"] * ms, d["p"]))
            if (d["r"], d["T"]) != last:
                funding.append((local_ns(ts), d["E"] * ms, Decimal(d["r"]), d["T"] * ms))
                last = (d["r"], d["T"])
    return trades, marks, funding


def assert_catalog_equals_input(catalog_dir: Path, expected: tuple[list, list, list]) -> None:
    trades, marks, funding = expected
    catalog = ParquetDataCatalog(str(catalog_dir))
    sides = {AggressorSide.BUYER: "BUYER", AggressorSide.SELLER: "SELLER"}
    ticks = catalog.trade_ticks(instrument_ids=[IID])
    got = [(t.ts_init, t.ts_event, str(t.price), str(t.size), sides[t.aggressor_side], t.trade_id.value) for t in ticks]
    assert sorted(got) == sorted(trades) and len(got) > 1000
    assert {t.price.precision for t in ticks} == {1} and {t.size.precision for t in ticks} == {3}
    assert {s for *_, s, _ in got} == {"BUYER", "SELLER"}
    mark_updates = catalog.query(MarkPriceUpdate, identifiers=[IID])
    assert sorted((m.ts_init, m.ts_event, str(m.value)) for m in mark_updates) == sorted(marks)
    assert len(marks) > 86_000 and {m.value.precision for m in mark_updates} == {8}
    rates = catalog.query(FundingRateUpdate, identifiers=[IID])
    got_rates = [(r.ts_init, r.ts_event, Decimal(str(r.rate)), r.next_funding_ns) for r in rates]
    assert got_rates == funding and len(funding) >= 20


def leaks(root: Path, *secrets: str) -> list[str]:
    """Files under root whose bytes contain any of the secrets."""
    return [str(p) for p in root.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)]


# -- landing ---------------------------------------------------------------------------------


def test_lands_the_day_as_replay_lines_asking_only_for_its_channels(landed, days):
    assert landed.path.name == "binance-futures_2024-01-02_BTCUSDT.ndjson.gz"
    # Exactly the BTCUSDT aggTrade + bookTicker + markPrice lines, in order: no ETHUSDT, trade or depth lines.
    assert raw_lines(landed.path) == days["btc"]["line"].to_list()
    ok = [r for r in landed.requests if r.status == 200]
    assert sorted(r.minute for r in ok) == [dt.datetime(2024, 1, 2) + dt.timedelta(minutes=m) for m in range(1440)]
    assert all(r.filters == FILTERS and r.authorization == f"Bearer {KEY}" for r in landed.requests)
    progress = [m for m in landed.logs if "minutes done" in m]
    assert len(progress) == 24 and progress[-2:] == [
        "BTCUSDT 2024-01-02: minutes done 1380/1440",
        "BTCUSDT 2024-01-02: minutes done 1440/1440",
    ]
    # The client's slice cache is gone; only the landing remains, and the key is nowhere.
    assert [p.name for p in landed.path.parent.parent.iterdir()] == ["BTCUSDT"]
    assert not leaks(landed.path.parent.parent, KEY) and not any(KEY in m for m in landed.logs)


def test_rate_limits_and_server_errors_are_retried_by_the_client(landed):
    assert [r.status for r in landed.requests if r.minute == dt.datetime(2024, 1, 2, 0, 5)] == [429, 429, 200]
    assert [r.status for r in landed.requests if r.minute == dt.datetime(2024, 1, 2, 13, 20)] == [500, 200]
    # 61 s after each 429 and 2**1 s + jitter after the 500 (recorded, not waited).
    assert sorted(landed.sleeps)[-2:] == [61, 61] and len(landed.sleeps) == 3 and 2 <= min(landed.sleeps) < 3


def test_quotes_equal_the_input(landed):
    want = []
    for line in raw_lines(landed.path):
        ts, payload = line.split(" ", 1)
        d = json.loads(payload)["data"]
        if d["e"] == "bookTicker":
            want.append((local_ns(ts), d["T"] * 1_000_000, float(d["b"]), float(d["a"]), float(d["B"]), float(d["A"])))
    frame = TardisSource(api_key=KEY).read_frame(QUOTES, [landed.path], part())
    cols = ("ts_init", "ts_event", "bid_price", "ask_price", "bid_size", "ask_size")
    got = list(zip(*(frame[c].dt.epoch("ns") if c.startswith("ts") else frame[c] for c in cols)))
    assert got == want and len(want) > 1000
    assert (
        TardisSource(api_key=KEY, quotes=False).read_frame(QUOTES, [landed.path], part()).height == 0
    )  # not asked for


def test_frames_equal_the_input(landed, expected):
    source, path = TardisSource(api_key=KEY), landed.path
    trades, marks, funding = expected

    def ns(frame: pl.DataFrame, *cols: str) -> list[tuple]:
        return list(
            zip(*[frame[c].dt.epoch("ns") if frame[c].dtype == pl.Datetime("ns", "UTC") else frame[c] for c in cols])
        )

    frame = source.read_frame(TRADES, [path], part())
    assert ns(frame, "ts_init", "ts_event", "price", "size", "trade_id") == [
        (t[0], t[1], float(t[2]), float(t[3]), t[5]) for t in trades
    ]
    assert frame["aggressor_side"].cast(pl.String).to_list() == [t[4] for t in trades]
    frame = source.read_frame(MARK_PRICES, [path], part())
    assert ns(frame, "ts_init", "ts_event", "value") == [(m[0], m[1], float(m[2])) for m in marks]
    frame = source.read_frame(FUNDING_RATES, [path], part())
    assert ns(frame, "ts_init", "ts_event", "rate", "next_funding_time") == [
        (f[0], f[1], float(f[2]), f[3]) for f in funding
    ]


def test_trade_channel_is_selectable(free_landed, days):
    assert {json.dumps(r.filters) for r in free_landed.requests} == {
        json.dumps([{"channel": c, "symbols": ["btcusdt"]} for c in ("bookTicker", "markPrice", "trade")])
    }
    lines = raw_lines(free_landed.path)
    others = days["free"].filter(~pl.col("line").str.contains("@aggTrade", literal=True))["line"].to_list()
    assert sorted(lines) == sorted(["", *days["free_trade"]["line"].to_list(), *others])
    trades, _, _ = expected_from_input(lines)
    frame = TardisSource(trade_channel="trade").read_frame(TRADES, [free_landed.path], part(day=FREE_DAY))
    assert sorted(zip(frame["ts_init"].dt.epoch("ns"), frame["ts_event"].dt.epoch("ns"), frame["trade_id"])) == sorted(
        (t[0], t[1], t[5]) for t in trades
    )
    assert frame["trade_id"].str.starts_with("9").all() and frame.height == len(trades) > 300


def test_free_first_day_of_month_without_key_keeps_disconnects(free_landed, days):
    assert {r.authorization for r in free_landed.requests} == {""}
    assert any("TARDIS_API_KEY is not set: replaying" in m and "free first day" in m for m in free_landed.logs)
    lines = raw_lines(free_landed.path)
    marker = lines.index(disconnected_after(days)) + 1
    assert lines[marker] == "" and lines.count("") == 1
    # The parser skips the marker: every mark price is there.
    marks = TardisSource().read_frame(MARK_PRICES, [free_landed.path], part(day=FREE_DAY))
    assert marks.height == len(expected_from_input(lines)[1]) > 86_000


def test_missing_key_fails_before_downloading_on_paid_days(server, tmp_path):
    with pytest.raises(SourceError) as err:
        land(TardisSource(endpoint=server.url), part(), tmp_path)
    assert not isinstance(err.value, TransientSourceError)
    message = str(err.value)
    assert message.startswith("TARDIS_API_KEY is not set: only the first day of each month is free on Tardis.dev")
    assert "2024-01-02" in message and server.requests == []
    assert not (tmp_path / "tardis" / "2024-01-02" / "BTCUSDT").exists()


def test_rejected_key_is_a_clear_permanent_error_without_the_key(server, sleeps, tmp_path):
    with pytest.raises(SourceError) as err:
        land(TardisSource(api_key=WRONG_KEY, endpoint=server.url), part(), tmp_path)
    message = str(err.value)
    assert not isinstance(err.value, TransientSourceError)
    assert "rejected the API key in TARDIS_API_KEY (HTTP 401" in message and "BTCUSDT 2024-01-02" in message
    assert WRONG_KEY not in message and err.value.__cause__ is None and err.value.__suppress_context__
    assert sleeps == [] and {r.status for r in server.requests} == {401}  # 401 is not retried
    assert list(tmp_path.rglob("*")) == [tmp_path / "tardis", tmp_path / "tardis" / "2024-01-02"]


def test_a_bad_request_is_permanent(server, sleeps, tmp_path):
    with pytest.raises(SourceError) as err:
        land(TardisSource(api_key=KEY, endpoint=server.url, exchange="binance-futurez"), part(), tmp_path)
    assert not isinstance(err.value, TransientSourceError) and sleeps == []
    assert str(err.value).startswith("binance-futurez BTCUSDT 2024-01-02: Tardis.dev answered HTTP 400 at ")


def test_a_day_failing_midway_leaves_nothing_landed(server, sleeps, tmp_path):
    server.fail_always(700, 500)
    with pytest.raises(TransientSourceError) as err:
        land(TardisSource(api_key=KEY, endpoint=server.url), part(), tmp_path)
    assert "HTTP 500 at 11:40 UTC after the client's retries" in str(err.value)
    assert len([r for r in server.requests if r.minute == dt.datetime(2024, 1, 2, 11, 40)]) == 5
    assert len(sleeps) == 4  # the client's 2**n backoff between its 5 attempts
    # No landing folder, no half-written file, no temporary or cache folder.
    assert list(tmp_path.rglob("*")) == [tmp_path / "tardis", tmp_path / "tardis" / "2024-01-02"]


def test_an_unreachable_endpoint_is_transient(sleeps, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientSourceError) as err:
        land(TardisSource(api_key=KEY, endpoint=f"http://127.0.0.1:{port}"), part(), tmp_path)
    assert str(err.value).startswith("binance-futures BTCUSDT 2024-01-02: cannot reach 127.0.0.1: ClientConnectorError")
    assert len(sleeps) >= 4 and KEY not in str(err.value)


# -- through Dagster ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dagster's own snapshot code
def test_dagster_shows_the_key_variable_never_its_value_and_fails_clearly_on_401(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TARDIS_API_KEY", WRONG_KEY)
    monkeypatch.setenv("TARDIS_ENDPOINT", server.url)
    settings = make_settings(tmp_path, source="tardis", symbols=["BTCUSDT"])

    # The resource and the code location's snapshot (what the UI shows) name the variable only.
    source = build_source(settings)
    assert WRONG_KEY not in repr(source) and WRONG_KEY not in str(source)
    assert source.endpoint == server.url
    configured = json.loads(source.get_resource_definition().config_schema.default_value_as_json_str)
    assert configured["api_key"] == {"env": "TARDIS_API_KEY"}
    snapshot = serialize_value(RepositorySnap.from_def(build_definitions(settings).get_repository_def()))
    assert '"TARDIS_API_KEY"' in snapshot and WRONG_KEY not in snapshot

    # A rejected key fails the run at once (no retry) with a clear reason, and the key is nowhere.
    instance = make_instance(tmp_path)
    (failed,) = build(settings, instance, [partition_key(DAY, "BTCUSDT")], raise_on_error=False).values()
    assert not failed.success
    (failure,) = failed.get_step_failure_events()
    assert failure.step_key == "raw_market_data"
    reason = failure.step_failure_data.user_failure_data.description
    assert reason.startswith(
        "partition 2024-01-02|BTCUSDT: binance-futures BTCUSDT 2024-01-02: Tardis.dev rejected the API key in "
        "TARDIS_API_KEY (HTTP 401"
    )
    logs = [serialize_value(e) for e in instance.all_logs(failed.run_id)]
    assert any("HTTP 401" in e for e in logs) and not any(WRONG_KEY in e for e in logs)
    assert not any("STEP_UP_FOR_RETRY" in e for e in logs)
    assert not leaks(tmp_path, WRONG_KEY)
    assert not [p for p in settings.raw_dir.rglob("*") if p.is_file() or p.name == "BTCUSDT"]  # nothing landed


# -- the command lines ---------------------------------------------------------------------------


def test_hedgegrid_build_from_tardis(server, expected, tmp_path):
    proc = run(
        [
            str(BIN / "hedgegrid"),
            "build",
            "--source",
            "tardis",
            "--symbol",
            "BTCUSDT",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-03",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        tmp_path,
        TARDIS_API_KEY=KEY,
        TARDIS_ENDPOINT=server.url,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "] 2024-01-02|BTCUSDT  ok  trades=" in proc.stdout
    assert_catalog_equals_input(tmp_path / "d" / "catalog", expected)
    # The run's log (progress included) is in the instance; the key is in no log, metadata or file.
    instance = DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    (build_run,) = instance.get_runs()
    logs = [serialize_value(e) for e in instance.all_logs(build_run.run_id)]
    assert any("minutes done 1440/1440" in e for e in logs) and not any(KEY in e for e in logs)
    meta = instance.get_latest_materialization_event(AssetKey("raw_market_data")).asset_materialization.metadata
    assert meta["source"].value == "tardis" and meta["files"].value == ["binance-futures_2024-01-02_BTCUSDT.ndjson.gz"]
    assert KEY not in proc.stdout + proc.stderr and not leaks(tmp_path, KEY)


def test_dagster_asset_materialize_from_tardis(server, expected, tmp_path):
    proc = dagster_materialize(
        tmp_path,
        "--partition",
        "2024-01-02|BTCUSDT",
        TARDIS_API_KEY=KEY,
        TARDIS_ENDPOINT=server.url,
        HEDGEGRID_SOURCE="tardis",
    )
    log = proc.stdout + proc.stderr
    assert "minutes done 1440/1440" in log and KEY not in log
    assert_catalog_equals_input(tmp_path / "d" / "catalog", expected)
    assert not leaks(tmp_path, KEY)

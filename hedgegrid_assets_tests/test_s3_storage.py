"""The catalog and the data zones in object storage (issue 14, "Object storage").

Against a real S3 API server on 127.0.0.1 (moto's server mode, started here): `hedgegrid
build --catalog s3://... --data-dir s3://...` writes the same objects, byte for byte, as a
local build writes files; NautilusTrader 1.231 reads them through fsspec and a BacktestNode
runs from them; a rebuild replaces the partition whole; a build killed after its commit point
is rolled forward (by `hedgegrid verify` or the next build); two builds of one partition never
overlap; raw objects are written once and stay as landed; the secret key is nowhere.

Crashes are real: the build runs in a child process that SIGKILLs itself right after (or
before) an aimed S3 request, the way test_partition_commit.py aims at file operations.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.locks import PartitionBusyError
from hedgegrid_assets.object_zones import Lease, hold
from hedgegrid_assets.storage import S3Zone
from hedgegrid_assets_tests import s3_server
from hedgegrid_assets_tests.test_cli import BIN, run

BUCKET = "hedgegrid-test"
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAY = ["--start", "2024-01-01", "--end", "2024-01-02"]
KINDS = ["--data-types", "trades,quotes,bars,mark,funding"]
KEY = "2024-01-01|BTCUSDT"

# A `hedgegrid build` that kills itself at an aimed S3 request: argv[1] is "after-intent"
# (the commit point passed, no copy done), "after-copy" (argv[2] copies done, the others not),
# or "before-intent" (every staged object uploaded, no intent).
KILLER = """
import os, signal, sys
aim, nth = sys.argv[1], int(sys.argv[2])
from hedgegrid_assets import storage
put, copy, seen = storage.S3Zone.put_bytes, storage.S3Zone.copy, [0]
def aimed_put(self, relative, *args, **kwargs):
    if aim == "before-intent" and relative.endswith("/intent.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    etag = put(self, relative, *args, **kwargs)
    if aim == "after-intent" and relative.endswith("/intent.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return etag
def aimed_copy(self, *args):
    copy(self, *args)
    seen[0] += 1
    if aim == "after-copy" and seen[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
storage.S3Zone.put_bytes, storage.S3Zone.copy = aimed_put, aimed_copy
from hedgegrid_assets.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def s3():
    with s3_server.running() as server, s3_server.aws_env(server):
        server.bucket(BUCKET)
        yield server


def build(s3, home: Path, prefix: str | None, *extra: str, symbols=SYMBOLS, program=None, **env):
    """`hedgegrid build` of DAY into s3://BUCKET/<prefix>/{catalog,data} (prefix None: a
    local build into home/local)."""
    zones = (["--catalog", f"s3://{BUCKET}/{prefix}/catalog", "--data-dir", f"s3://{BUCKET}/{prefix}/data"]
             if prefix else ["--data-dir", str(home / "local")])  # fmt: skip
    args = [*(program or [str(BIN / "hedgegrid")]), "build", "--source", "sample",
            *[a for s in symbols for a in ("--symbol", s)], *DAY, *KINDS, *zones, *extra]  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    return run(args, home, HEDGEGRID_WORK_DIR=str(home / "work"), **s3.env, **env)


def objects(zone: S3Zone, under: str = "") -> dict[str, bytes]:
    return {name: zone.read_bytes(name) for name in zone.find(under)}


def local_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def nautilus(s3, prefix: str) -> ParquetDataCatalog:
    """The call that works (documented in the README): the path without the scheme, the
    protocol apart, fsspec's options (instruments, funding) and the Rust backend's (trades,
    quotes, bars, marks), each with the endpoint and the keys."""
    return ParquetDataCatalog(f"{BUCKET}/{prefix}/catalog", fs_protocol="s3", fs_storage_options=s3.storage_options,
                              fs_rust_storage_options=s3.rust_storage_options)  # fmt: skip


def values(catalog: ParquetDataCatalog) -> dict:
    out = {
        "instruments": sorted(str(i.id) for i in catalog.instruments()),
        "trades": [
            (t.ts_init, str(t.price), str(t.size), t.trade_id.value, int(t.aggressor_side))
            for t in catalog.trade_ticks()
        ],
        "quotes": [(q.ts_init, str(q.bid_price), str(q.ask_price)) for q in catalog.quote_ticks()],
    }
    for symbol in SYMBOLS:  # funding one instrument at a time (1.231, see the README)
        ident = [f"{symbol}-PERP.BINANCE"]
        out[f"marks {symbol}"] = [(m.ts_init, str(m.value)) for m in catalog.query(MarkPriceUpdate, identifiers=ident)]
        out[f"funding {symbol}"] = [(f.ts_init, str(f.rate), f.next_funding_ns)
                                    for f in catalog.query(FundingRateUpdate, identifiers=ident)]  # fmt: skip
    return out


@pytest.fixture(scope="module")
def built(s3, tmp_path_factory):
    """One day x 2 symbols built into S3 and, from the same sample input, into a local folder."""
    base = tmp_path_factory.mktemp("s3build")
    on_s3 = build(s3, base / "s3", "main")
    assert on_s3.returncode == 0, on_s3.stdout + on_s3.stderr
    local = build(s3, base / "local-home", None)
    assert local.returncode == 0, local.stdout + local.stderr
    return base, on_s3, base / "local-home" / "local" / "catalog"


def test_the_catalog_in_s3_is_the_local_catalog_object_for_object(s3, built):
    _, proc, local = built
    assert f"into s3://{BUCKET}/main/catalog" in proc.stdout and "[2/2]" in proc.stdout
    in_bucket = objects(S3Zone(f"s3://{BUCKET}/main/catalog"))
    on_disk = {k: v for k, v in local_files(local).items() if not k.startswith(".")}
    # The same names (the ones Nautilus expects) and the same bytes; nothing else is left.
    assert in_bucket.keys() == on_disk.keys()
    assert all(in_bucket[k] == on_disk[k] for k in on_disk if k.endswith(".parquet"))
    assert len([k for k in in_bucket if k.startswith("data/trade_tick/")]) == 2


def test_nautilus_reads_the_same_values_from_s3_as_from_disk(s3, built):
    _, _, local = built
    from_s3, from_disk = values(nautilus(s3, "main")), values(ParquetDataCatalog(str(local)))
    assert from_s3["instruments"] == ["BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"]
    assert len(from_s3["trades"]) > 2 * 2000 and all(from_s3[f"funding {s}"] for s in SYMBOLS)
    assert from_s3 == from_disk


def test_from_uri_fails_inside_s3fs_as_the_issue_says(s3, built):
    """Measured: `from_uri` hands the bucket to s3fs as `host`, with or without options."""
    for options in (None, s3.storage_options):
        with pytest.raises(TypeError, match="unexpected keyword argument 'host'"):
            ParquetDataCatalog.from_uri(f"s3://{BUCKET}/main/catalog", fs_storage_options=options).instruments()


def test_fsspec_options_alone_serve_only_the_python_readers(s3, built):
    """Measured: with fs_storage_options only, instruments and funding (pyarrow through fsspec)
    read, but trades, quotes, bars and marks (the Rust DataFusion backend) find no object store."""
    catalog = ParquetDataCatalog(f"{BUCKET}/main/catalog", fs_protocol="s3", fs_storage_options=s3.storage_options)
    assert len(catalog.instruments()) == 2
    assert catalog.query(FundingRateUpdate, identifiers=["BTCUSDT-PERP.BINANCE"])
    with pytest.warns(UserWarning, match="Failed to register object store"), \
            pytest.raises(RuntimeError, match="No suitable object store found"):  # fmt: skip
        catalog.trade_ticks()


def test_a_backtest_node_runs_from_the_s3_catalog(s3, built):
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.config import (
        BacktestDataConfig,
        BacktestEngineConfig,
        BacktestRunConfig,
        BacktestVenueConfig,
        ImportableStrategyConfig,
        LoggingConfig,
    )  # fmt: skip
    from nautilus_trader.model.data import QuoteTick, TradeTick

    instrument = "BTCUSDT-PERP.BINANCE"
    config = BacktestRunConfig(
        venues=[
            BacktestVenueConfig(
                name="BINANCE",
                oms_type="NETTING",
                account_type="MARGIN",
                base_currency="USDT",
                starting_balances=["100000 USDT"],
            )
        ],
        data=[
            BacktestDataConfig(
                catalog_path=f"{BUCKET}/main/catalog",
                catalog_fs_protocol="s3",
                catalog_fs_storage_options=s3.storage_options,
                catalog_fs_rust_storage_options=s3.rust_storage_options,
                data_cls=f"{cls.__module__}:{cls.__name__}",
                instrument_id=instrument,
            )
            for cls in (TradeTick, QuoteTick, MarkPriceUpdate, FundingRateUpdate)
        ],
        engine=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            strategies=[
                ImportableStrategyConfig(
                    strategy_path="hedgegrid_assets_tests.probe_strategy:DataProbe",
                    config_path="hedgegrid_assets_tests.probe_strategy:DataProbeConfig",
                    config={"instrument_id": instrument},
                )
            ],
        ),
        dispose_on_completion=False,
    )
    node = BacktestNode(configs=[config])
    try:
        assert len(node.run()) == 1
        (probe,) = node.get_engine(config.id).trader.strategies()
        catalog = nautilus(s3, "main")
        assert probe.counts["trades"] == len(catalog.trade_ticks(instrument_ids=[instrument])) > 2000
        assert probe.counts["quotes"] == len(catalog.quote_ticks(instrument_ids=[instrument])) > 0
        assert probe.counts["mark_prices"] == len(catalog.query(MarkPriceUpdate, identifiers=[instrument])) > 0
        assert probe.counts["funding_rates"] == len(catalog.query(FundingRateUpdate, identifiers=[instrument])) > 0
        assert probe.out_of_order == {k: 0 for k in probe.out_of_order}
    finally:
        node.dispose()


def test_hedgegrid_backtest_runs_from_the_s3_catalog_as_from_disk(s3, built, tmp_path):
    """`hedgegrid backtest --catalog s3://...` (Nautilus's Rust readers get the credentials from
    storage.nautilus_catalog_args): the same fills, PnL, fees and funding as over the local
    catalog built from the same input, and the secret key in none of its output or files."""
    _, _, local = built

    def backtest(catalog: str, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        out = tmp_path / name
        proc = run([str(BIN / "hedgegrid"), "backtest", "--symbol", "BTCUSDT", *DAY, "--catalog", catalog,
                    "--output", str(out)], tmp_path / f"{name}-home", **s3.env)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert s3.secret_key not in proc.stdout + proc.stderr
        assert all(s3.secret_key.encode() not in f.read_bytes() for f in out.rglob("*") if f.is_file())
        keep = [
            ln
            for ln in proc.stdout.splitlines()
            if not any(w in ln for w in ("catalog", "equity curve", "run time", "from "))
        ]
        return proc, keep

    (tmp_path / "s3-home").mkdir()
    (tmp_path / "disk-home").mkdir()
    on_s3, from_s3 = backtest(f"s3://{BUCKET}/main/catalog", "s3")
    _, from_disk = backtest(str(local), "disk")
    assert (
        f"s3://{BUCKET}/main/catalog" in on_s3.stdout and "trades, quotes, mark_prices, funding_rates" in on_s3.stdout
    )
    assert len(from_s3) > 5 and from_s3 == from_disk
    # Not a catalog: said plainly.
    missing = run([str(BIN / "hedgegrid"), "backtest", "--symbol", "BTCUSDT", *DAY, "--catalog",
                   f"s3://{BUCKET}/nothing/catalog", "--output", str(tmp_path / "x")], tmp_path / "s3-home", **s3.env)  # fmt: skip
    assert (
        missing.returncode != 0 and f"s3://{BUCKET}/nothing/catalog: not a catalog" in missing.stdout + missing.stderr
    )


def test_the_secret_key_is_nowhere(s3, built):
    base, proc, _ = built
    secret = s3.secret_key
    assert secret not in proc.stdout + proc.stderr
    # Not in the instance: every event of every run (materialization metadata included),
    # nor anywhere in DAGSTER_HOME's files (the sqlite databases too) or the local scratch.
    instance = DagsterInstance.from_config(str(base / "s3" / "dagster_home"))
    runs = instance.get_runs()
    assert len(runs) == 2
    events = [str(e) for run in runs for e in instance.all_logs(run.run_id)]
    assert any("catalog_file" in e and f"s3://{BUCKET}/main/catalog/data/" in e for e in events)
    assert not [e for e in events if secret in e]
    # The report and the day's picture were read back from the bucket.
    reports = [e.asset_materialization for run in runs for e in instance.all_logs(run.run_id)
               if e.asset_materialization and e.asset_materialization.asset_key.path[-1] == "catalog_report"]  # fmt: skip
    assert len(reports) == 2
    for mat in reports:
        assert mat.metadata["instrument"].value is True
        assert "not drawn" not in str(mat.metadata["day_picture"].value)
    for path in (base / "s3").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # Nor in the bucket.
    assert not [k for k, v in objects(S3Zone(f"s3://{BUCKET}/main")).items() if secret.encode() in v]


def test_a_rebuild_replaces_the_partition_whole_and_raw_objects_stay_as_landed(s3, built, tmp_path):
    base, _, _ = built
    catalog, raw = S3Zone(f"s3://{BUCKET}/main/catalog"), S3Zone(f"s3://{BUCKET}/main/data/raw")
    before, raw_before = objects(catalog, "data"), objects(raw)
    manifest = json.loads(raw_before["_manifests/2024-01-01/BTCUSDT.json"])
    stamps = {k: raw.head(k)["LastModified"] for k in raw_before if not k.startswith("_manifests")}

    # The same input again: the raw zone is not written to at all, every object as landed.
    proc = build(s3, tmp_path / "same", "main", symbols=["BTCUSDT"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert objects(raw) == raw_before
    assert {k: raw.head(k)["LastModified"] for k in stamps} == stamps
    folder = raw.relative(manifest["directory"])
    for f in manifest["files"]:
        assert hashlib.sha256(raw.read_bytes(f"{folder}/{f['name']}")).hexdigest() == f["sha256"]
    assert objects(catalog, "data") == before  # byte-identical rebuild

    # Other input (another seed): every kind of the partition replaced, nothing else touched.
    proc = build(s3, tmp_path / "other", "main", symbols=["BTCUSDT"], HEDGEGRID_SAMPLE__SEED="8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = objects(catalog, "data")
    assert after.keys() == before.keys()
    btc = [k for k in before if "BTCUSDT" in k and "crypto_perpetual" not in k]
    assert len(btc) == 5 and all(after[k] != before[k] for k in btc)
    assert all(after[k] == before[k] for k in before if "ETHUSDT" in k)
    assert catalog.find(".hedgegrid-journal") == []  # no staging left
    # The changed input landed beside the old landing, which is exactly as it was.
    raw_after = objects(raw)
    assert all(raw_after[k] == v for k, v in raw_before.items() if not k.startswith("_manifests"))
    new_manifest = json.loads(raw_after["_manifests/2024-01-01/BTCUSDT.json"])
    assert new_manifest["directory"] != manifest["directory"]
    verify = run([str(BIN / "hedgegrid"), "verify", "--data-dir", f"s3://{BUCKET}/main/data",
                  "--catalog", f"s3://{BUCKET}/main/catalog"], tmp_path, **s3.env)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ok: every partition is whole and every raw file is as landed" in verify.stdout


@pytest.fixture(scope="module")
def old_and_new(s3, built, tmp_path_factory):
    """BTCUSDT's partition from seed 7 (the built catalog) and from seed 8, locally."""
    base = tmp_path_factory.mktemp("s3new")
    proc = build(s3, base, None, symbols=["BTCUSDT"], HEDGEGRID_SAMPLE__SEED="8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = {k: v for k, v in local_files(base / "local" / "catalog").items() if k.startswith("data/")}
    _, _, local = built
    old = {k: v for k, v in local_files(local).items() if k.startswith("data/") and "ETHUSDT" not in k}
    return old, new


def _seeded(prefix: str, old: dict[str, bytes]) -> S3Zone:
    """A catalog at `prefix` holding the old partition (the local seed-7 build's files)."""
    zone = S3Zone(f"s3://{BUCKET}/{prefix}/catalog")
    for name, data in old.items():
        zone.put_bytes(name, data)
    return zone


def _partition(zone: S3Zone) -> dict[str, bytes]:
    return objects(zone, "data")


@pytest.mark.parametrize(("aim", "nth", "stands", "recovered_by"), [
    ("before-intent", 0, "old", "next build"), ("after-intent", 0, "new", "verify"),
    ("after-copy", 2, "new", "verify"), ("after-copy", 2, "new", "next build"),
])  # fmt: skip
def test_a_killed_build_leaves_old_or_new_after_recovery(s3, old_and_new, tmp_path, aim, nth, stands, recovered_by):
    old, new = old_and_new
    prefix = f"kill-{aim}-{recovered_by.replace(' ', '')}"
    zone = _seeded(prefix, old)
    assert _partition(zone) == old
    lease = {"HEDGEGRID_LOCK_LEASE_SECONDS": "6"}  # the dead builder's lease expires soon
    killed = build(s3, tmp_path / "killed", prefix, symbols=["BTCUSDT"], program=[sys.executable, "-c", KILLER, aim, str(nth)],
                   HEDGEGRID_SAMPLE__SEED="8", **lease)  # fmt: skip
    assert killed.returncode == -9, killed.stdout + killed.stderr
    pending = zone.find(".hedgegrid-journal")
    assert pending and any(p.endswith("intent.json") for p in pending) == (aim != "before-intent")
    if aim == "after-copy":  # the window: two kinds new, the others still old, each object whole
        mixed, changed = _partition(zone), [k for k in new if new[k] != old[k]]
        assert len(changed) == 5
        assert sum(mixed[k] == new[k] for k in changed) == 2 and sum(mixed[k] == old[k] for k in changed) == 3
    time.sleep(6.5)
    if recovered_by == "verify":
        proc = run([str(BIN / "hedgegrid"), "verify", "--catalog", f"s3://{BUCKET}/{prefix}/catalog",
                    "--data-dir", f"s3://{BUCKET}/{prefix}/data"], tmp_path, **s3.env, **lease)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        said = "finished an interrupted commit" if stands == "new" else "discarded an unfinished commit"
        assert f"partition {KEY}: {said}" in proc.stdout
        assert _partition(zone) == (new if stands == "new" else old)
    else:  # the next build recovers first (under the lock it took over), then builds seed 7 again
        proc = build(s3, tmp_path / "next", prefix, symbols=["BTCUSDT"], **lease)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _partition(zone) == old
        instance = DagsterInstance.from_config(str(tmp_path / "next" / "dagster_home"))
        logs = [e.user_message for r in instance.get_runs() for e in instance.all_logs(r.run_id)]
        assert any("took over the lock" in m for m in logs)
        said = "finished an interrupted commit" if stands == "new" else "discarded an unfinished commit"
        assert any(f"partition {KEY}: {said}" in m for m in logs)
    assert zone.find(".hedgegrid-journal") == []


def test_a_held_partition_refuses_a_builder_that_may_not_wait(s3, tmp_path):
    locks = S3Zone(f"s3://{BUCKET}/lockzone/data/locks")
    with hold(locks, [KEY], lease_s=30, wait_s=0):
        info = json.loads(locks.read_bytes("2024-01-01/BTCUSDT.lock"))
        assert info["holder"].startswith("pid ") and info["expires"] > time.time()
        with pytest.raises(
            PartitionBusyError, match=rf"partition {KEY.replace('|', '.')} is being built by pid \d+ on .* since 20"
        ):
            Lease(locks, KEY, 30, 0, print).acquire()
        proc = build(s3, tmp_path / "refused", "lockzone", symbols=["BTCUSDT"], HEDGEGRID_LOCK_WAIT_SECONDS="0")
        assert proc.returncode == 1 and f"{KEY}  FAILED" in proc.stdout
        # Said in the run's log (the CLI's one-line reason is the run's, as for the disk lock).
        instance = DagsterInstance.from_config(str(tmp_path / "refused" / "dagster_home"))
        (refused,) = instance.get_runs()
        said = " ".join(str(e) for e in instance.all_logs(refused.run_id))
        assert f"partition {KEY} is being built by pid {info['holder'].split()[1]} on " in said
    assert locks.find() == []  # released: deleted
    # A dead builder's lease (expired, never renewed) is taken over.
    locks.put_bytes(
        "2024-01-01/BTCUSDT.lock", json.dumps({"holder": "pid 1 on gone", "since": "x", "expires": 0}).encode()
    )
    said = []
    with hold(locks, [KEY], lease_s=30, wait_s=0, say=said.append):
        assert json.loads(locks.read_bytes("2024-01-01/BTCUSDT.lock"))["holder"] != "pid 1 on gone"
    assert said == [f"partition {KEY}: took over the lock of pid 1 on gone since x: its lease had expired"]


def test_a_holder_that_lost_its_lease_may_not_commit(s3):
    from hedgegrid_assets.catalog.journal import CommitError
    from hedgegrid_assets.object_zones import _guard

    locks = S3Zone(f"s3://{BUCKET}/lostzone/locks")
    lease = Lease(locks, KEY, 3, 0, print)  # renewed every second
    lease.acquire()
    try:
        first = lease.etag
        deadline = time.monotonic() + 20
        while lease.etag == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lease.etag != first  # renewed
        _guard(KEY)  # still held: may commit
        # Another builder takes it over (as after a stall of this one longer than its lease):
        # the next renewal finds the lease changed, and the holder may not commit.
        locks.put_bytes(lease.relative, b'{"holder": "someone else", "expires": 1e12}')
        while lease.lost is None and time.monotonic() < deadline + 10:
            time.sleep(0.1)
        assert lease.lost == "its lease was taken over by another builder"
        with pytest.raises(CommitError, match=f"partition {KEY.replace('|', '.')}: this build lost its lock"):
            _guard(KEY)
    finally:
        lease.release()
    assert json.loads(locks.read_bytes(lease.relative))["holder"] == "someone else"  # not ours to delete


def test_two_concurrent_builds_of_one_partition_never_overlap(s3, tmp_path):
    results: dict[str, subprocess.CompletedProcess] = {}
    homes = {"a": tmp_path / "a", "b": tmp_path / "b"}  # two DAGSTER_HOMEs, one bucket prefix
    threads = [threading.Thread(target=lambda n=n, h=h: results.__setitem__(n, build(s3, h, "concurrent", symbols=["BTCUSDT"])))
               for n, h in homes.items()]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results.values()] == [0, 0], [r.stdout + r.stderr for r in results.values()]
    spans, waited = [], []
    for home in homes.values():
        instance = DagsterInstance.from_config(str(home / "dagster_home"))
        (run_,) = instance.get_runs()
        logs = instance.all_logs(run_.run_id)
        steps = [e.timestamp for e in logs if e.is_dagster_event and e.dagster_event_type in
                 (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS)]  # fmt: skip
        spans.append((min(steps), max(steps)))
        waited += [e.user_message for e in logs if "is being built by pid" in e.user_message]
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 < b0, f"the two builds' steps overlap: {spans}"
    assert len(waited) == 1 and "waiting up to" in waited[0]
    zone = S3Zone(f"s3://{BUCKET}/concurrent")
    assert zone.find("catalog/.hedgegrid-journal") == [] and zone.find("data/locks") == []

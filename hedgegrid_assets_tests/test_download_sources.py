"""Sources that fetch the data themselves (`binance`, `tardis-datasets`), against a real HTTP
server on 127.0.0.1 serving the vendors' real paths and file shapes (fake_vendor.py), with
429, 500, dropped-connection, 404 and wrong-checksum cases. Values are compared through
Nautilus's own catalog reads; the Tardis key must appear nowhere."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from hedgegrid_assets.errors import NotPublishedError, TransientSourceError
from hedgegrid_assets.landing.download import Downloads, Retry
from hedgegrid_assets.sources.base import LandingRequest
from hedgegrid_assets.sources.binance import BinanceSource
from hedgegrid_assets_tests.fake_vendor import FakeVendor
from hedgegrid_assets_tests.test_cli import BIN, run
from hedgegrid_assets_tests.test_csv_sources import binance_files, built_counts, expected_trades, tardis_files
from hedgegrid_assets_tests.test_jsonl_source import catalog_funding, catalog_trades, make_truth, part_for

KEY = "tardis-secret-key-123"
AGG = "/data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-02.zip"


def publish(server: FakeVendor, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            server.put("/" + path.relative_to(root).as_posix(), path.read_bytes())


def build_cmd(tmp_path: Path, source: str, data: Path, day: str = "2024-01-02", end: str = "2024-01-03") -> list[str]:
    return [str(BIN / "hedgegrid"), "build", "--source", source, "--symbol", "BTCUSDT", "--start", day, "--end", end,
            "--data-dir", str(data)]  # fmt: skip


@pytest.fixture
def binance_site(tmp_path):
    truth = make_truth(n_trades=120, mark_every_s=600)
    settlements = [(truth.start_ms + h * 3_600_000, "0.00010000") for h in (8, 16, 24)]
    binance_files(tmp_path / "site", truth, funding_settlements=settlements)
    with FakeVendor() as server:
        publish(server, tmp_path / "site")
        yield server, truth


def test_binance_downloads_through_faults_verifies_and_never_fetches_twice(tmp_path, binance_site):
    server, truth = binance_site
    server.fail(AGG, 429, 500)
    server.drop(AGG, 300)  # then the connection drops after 300 bytes: resumed with a Range request
    data = tmp_path / "d"
    env = {"HEDGEGRID_BINANCE__ENDPOINT": server.url}
    proc = run(build_cmd(tmp_path, "binance", data), tmp_path, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = built_counts(proc.stdout, "2024-01-02|BTCUSDT")
    assert (counts["trades"], counts["mark_prices"], counts["funding_rates"]) == ("120", "1,440", "3")
    assert counts.get("quotes", "0") == "0"  # no bookTicker file published that day: none, no failure
    assert [(r.status, r.range) for r in server.served(AGG)] == [
        (429, None),
        (500, None),
        (200, None),
        (206, "bytes=300-"),
    ]
    assert "downloads: 6 file(s)" in proc.stdout and "0 already in the raw zone" in proc.stdout, proc.stdout
    cat = data / "catalog"
    assert catalog_trades(cat) == expected_trades(truth)
    assert len(catalog_funding(cat)) == 3
    # The landing hard-links the verified download; nothing half-downloaded is left.
    cached = data / "raw" / "_downloads" / "binance" / AGG.lstrip("/")
    landed = data / "raw" / "binance" / "2024-01-02" / "BTCUSDT" / "BTCUSDT-aggTrades-2024-01-02.zip"
    assert landed.stat().st_ino == cached.stat().st_ino
    assert not list((data / "raw" / "_downloads").rglob(".partial/*"))
    # A second build downloads nothing again (it only asks again for the optional files it lacks).
    before = len(server.requests)
    proc = run(build_cmd(tmp_path, "binance", data), tmp_path, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "downloads: 0 file(s), 0.0 MB" in proc.stdout and "6 already in the raw zone" in proc.stdout, proc.stdout
    again = server.requests[before:]
    assert again and all(r.status == 404 and ("/bookTicker/" in r.path or "/klines/" in r.path) for r in again)


def test_a_wrong_checksum_keeps_nothing_and_names_both_sums(tmp_path, binance_site):
    server, _ = binance_site
    server.put(AGG + ".CHECKSUM", f"{'0' * 64}  BTCUSDT-aggTrades-2024-01-02.zip\n".encode())
    data = tmp_path / "d"
    proc = run(build_cmd(tmp_path, "binance", data), tmp_path, HEDGEGRID_BINANCE__ENDPOINT=server.url)
    assert proc.returncode == 1
    real = hashlib.sha256(server.files[AGG]).hexdigest()
    assert f"checksum mismatch: sha256 is {real}" in proc.stdout and f"says {'0' * 64}" in proc.stdout, proc.stdout
    cache = data / "raw" / "_downloads" / "binance"
    assert not (cache / AGG.lstrip("/")).exists() and not list(cache.rglob(".partial/*.zip"))
    assert not (data / "catalog" / "data").exists()


def test_404_says_no_data_for_an_old_day_and_not_published_for_a_recent_one(tmp_path, binance_site):
    server, _ = binance_site
    proc = run(build_cmd(tmp_path, "binance", tmp_path / "d", "2024-01-05", "2024-01-06"), tmp_path,
               HEDGEGRID_BINANCE__ENDPOINT=server.url)  # fmt: skip
    assert proc.returncode == 1
    assert "BTCUSDT-aggTrades-2024-01-05.zip does not exist (HTTP 404): BTCUSDT had no data that day" in proc.stdout
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    source = BinanceSource(endpoint=server.url, raw_dir=str(tmp_path / "raw"))

    dest = tmp_path / "landing"
    dest.mkdir()
    with pytest.raises(NotPublishedError, match="is not published yet .*retried later"):
        source.land(LandingRequest(part_for(day=yesterday), (), dest, lambda _: None))


def test_downloads_resume_and_give_up_as_transient(tmp_path):
    with FakeVendor() as server:
        server.put("/f.bin", b"x" * 3_000_000)
        server.drop("/f.bin", 1_234_567)
        sleeps: list[float] = []
        downloads = Downloads(tmp_path, "v", log=lambda _: None, retry=Retry(sleep=sleeps.append))
        path = downloads.get(f"{server.url}/f.bin", "f.bin")
        assert path.read_bytes() == b"x" * 3_000_000
        assert [r.range for r in server.served("/f.bin")] == [None, "bytes=1234567-"]
        server.put("/g.bin", b"y")
        server.fail("/g.bin", *([503] * 10))
        with pytest.raises(TransientSourceError, match="HTTP 503, still after 6 attempts"):
            downloads.get(f"{server.url}/g.bin", "g.bin")
        assert len(sleeps) == 1 + 5 and not (tmp_path / "_downloads" / "v" / "g.bin").exists()


@pytest.fixture
def tardis_site(tmp_path):
    truth = make_truth(n_trades=80, mark_every_s=900)
    files = tmp_path / "tardis"
    marks, funding = tardis_files(files, truth)
    tardis_files(files, make_truth(dt.date(2024, 1, 1), n_trades=50, mark_every_s=900))  # a free first day
    with FakeVendor(key=KEY) as server:
        for day in ("2024-01-01", "2024-01-02"):
            for data_type in ("trades", "derivative_ticker"):
                local = files / f"binance-futures_{data_type}_{day}_BTCUSDT.csv.gz"
                server.put(
                    f"/v1/binance-futures/{data_type}/{day.replace('-', '/')}/BTCUSDT.csv.gz", local.read_bytes()
                )
        yield server, truth, funding


def test_tardis_datasets_with_the_key_through_hedgegrid_build(tmp_path, tardis_site):
    server, truth, funding = tardis_site
    server.fail("/v1/binance-futures/trades/2024/01/02/BTCUSDT.csv.gz", 429)
    data = tmp_path / "d"
    proc = run(
        build_cmd(tmp_path, "tardis-datasets", data), tmp_path, TARDIS_API_KEY=KEY, TARDIS_DATASETS_ENDPOINT=server.url
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = built_counts(proc.stdout, "2024-01-02|BTCUSDT")
    assert counts["trades"] == "81" and counts.get("quotes", "0") == "0"  # the day has no quotes file
    ok = [r for r in server.requests if r.status == 200]
    assert {r.path.split("/")[3] for r in ok} == {"trades", "derivative_ticker"} and all(r.authorized for r in ok)
    assert len(catalog_funding(data / "catalog")) == len(funding)
    assert KEY not in proc.stdout + proc.stderr
    assert not [p for p in data.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def test_tardis_datasets_rejected_key_and_free_day(tmp_path, tardis_site):
    server, _, _ = tardis_site
    proc = run(build_cmd(tmp_path, "tardis-datasets", tmp_path / "d"), tmp_path, TARDIS_API_KEY="wrong-key-456",
               TARDIS_DATASETS_ENDPOINT=server.url)  # fmt: skip
    assert proc.returncode == 1
    assert "HTTP 403" in proc.stdout and "refused the key in TARDIS_API_KEY" in proc.stdout
    assert "wrong-key-456" not in proc.stdout + proc.stderr
    assert len(server.served("/v1/binance-futures/trades/2024/01/02/BTCUSDT.csv.gz")) == 1  # not retried
    # The first day of a month is free: asked without the key, and built.
    (tmp_path / "free").mkdir()  # another catalog: its own instance (free/dagster_home)
    proc = run(build_cmd(tmp_path, "tardis-datasets", tmp_path / "free", "2024-01-01", "2024-01-02"), tmp_path / "free",
               TARDIS_DATASETS_ENDPOINT=server.url)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert built_counts(proc.stdout, "2024-01-01|BTCUSDT")["trades"] == "51"
    free = [r for r in server.requests if "/2024/01/01/" in r.path]
    assert free and not any(r.authorized for r in free)


def test_a_stalled_answer_times_out_and_is_asked_again(tmp_path):
    with FakeVendor() as server:
        server.put("/slow.bin", b"z" * 100_000)
        server.slow("/slow.bin", 1.5)  # the first answer stalls past the timeout
        sleeps: list[float] = []
        downloads = Downloads(tmp_path, "v", log=lambda _: None, retry=Retry(timeout_s=0.5, sleep=sleeps.append))
        assert downloads.get(f"{server.url}/slow.bin", "slow.bin").read_bytes() == b"z" * 100_000
        assert len(server.served("/slow.bin")) == 2 and len(sleeps) == 1


def test_a_scheduled_run_retries_a_day_not_published_yet(tmp_path, binance_site, monkeypatch):
    """The daily schedule asks early: a day the vendor has not published is retried later
    (RetryRequested: every 30 min for a day; here at once, twice), not failed for good."""
    from hedgegrid_assets.definitions import BUILD_JOB, build_definitions
    from hedgegrid_assets.partitions import partition_key
    from hedgegrid_assets_tests.conftest import QUIET, make_instance, make_settings

    server, _ = binance_site
    monkeypatch.setattr(NotPublishedError, "retry_after_s", 0)
    monkeypatch.setattr(NotPublishedError, "retries", 2)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], source="binance", start_date=yesterday,
                             binance={"endpoint": server.url})  # fmt: skip
    job = build_definitions(settings).resolve_job_def(BUILD_JOB)
    result = job.execute_in_process(partition_key=partition_key(yesterday, "BTCUSDT"), instance=make_instance(tmp_path),
                                    raise_on_error=False, run_config=QUIET, tags={"dagster/schedule_name": "daily"})  # fmt: skip
    assert not result.success
    restarts = [
        e for e in result.all_events if e.event_type_value == "STEP_RESTARTED" and e.step_key == "raw_market_data"
    ]
    assert len(restarts) == 2
    failure = result.get_step_failure_events()[0]
    assert "not published yet" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)


def test_a_key_echoed_back_by_a_proxy_is_masked(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(403, f"denied for {self.headers.get('Authorization')}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        downloads = Downloads(tmp_path, "v", log=lambda _: None, headers={"Authorization": f"Bearer {KEY}"})
        with pytest.raises(Exception) as err:
            downloads.get(f"http://127.0.0.1:{server.server_address[1]}/x.csv.gz", "x")
        assert "HTTP 403" in str(err.value) and KEY not in str(err.value) and "***" in str(err.value)
    finally:
        server.shutdown()


def test_tardis_datasets_downloads_the_book_when_asked(tmp_path, tardis_site):
    """tardis.book on: incremental_book_L2 and book_snapshot_25 are downloaded too and become
    the day's deltas and depth-10 snapshots; off (the default), they are never asked for."""
    from hedgegrid_assets_tests.book_files import write_l2, write_snapshots

    server, _, _ = tardis_site
    for data_type, write in (("incremental_book_L2", lambda p: write_l2(p, 3_000, levels=20)),
                             ("book_snapshot_25", lambda p: write_snapshots(p, 50, 25))):  # fmt: skip
        path = write(tmp_path / f"{data_type}.csv.gz")
        server.put(f"/v1/binance-futures/{data_type}/2024/01/02/BTCUSDT.csv.gz", path.read_bytes())
    plain = run(build_cmd(tmp_path, "tardis-datasets", tmp_path / "a"), tmp_path, TARDIS_API_KEY=KEY,
                TARDIS_DATASETS_ENDPOINT=server.url)  # fmt: skip
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert not [r for r in server.requests if "book" in r.path]
    (tmp_path / "b").mkdir()  # another catalog: its own instance (b/dagster_home)
    proc = run(build_cmd(tmp_path, "tardis-datasets", tmp_path / "b"), tmp_path / "b", TARDIS_API_KEY=KEY,
               TARDIS_DATASETS_ENDPOINT=server.url, HEDGEGRID_TARDIS__BOOK="true")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = built_counts(proc.stdout, "2024-01-02|BTCUSDT")
    assert counts["order_book_deltas"] == "3,002" and counts["order_book_depth10"] == "50", proc.stdout
    assert {r.path.split("/")[3] for r in server.requests if "book" in r.path and r.status == 200} == set(
        ("incremental_book_L2", "book_snapshot_25")
    )

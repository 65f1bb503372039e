"""The daily schedule, the landing-folder file-drop sensor and the instance config (dagster.yaml)."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
import os
import zipfile
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.definitions.dependency import NodeHandle

from hedgegrid_assets.assets import RAW_ASSET
from hedgegrid_assets.automation import DAILY_SCHEDULE, FILE_DROP_SENSOR
from hedgegrid_assets.automation.landing import template_regex
from hedgegrid_assets.automation.sensors import FILE_TAG, Cursor
from hedgegrid_assets.definitions import BUILD_JOB, build_definitions
from hedgegrid_assets_tests.conftest import REPO, make_settings

# Dagster's own deprecation notices about its partition tags and partitioned schedules.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
UTC = dt.UTC
# A fixed, long-past modification time for dropped files (the sensor waits on fresh ones).
T0 = 1_704_200_000_000_000_000


def at(hh_mm: str, day: dt.date):
    h, m = map(int, hh_mm.split(":"))
    return dt.datetime.combine(day, dt.time(h, m), UTC)


def requested(defs, name: str, when: dt.datetime):
    schedule = defs.get_repository_def().get_schedule_def(name)
    with DagsterInstance.ephemeral() as instance:
        data = schedule.evaluate_tick(build_schedule_context(instance=instance, scheduled_execution_time=when))
    return data.run_requests


# ---------------------------------------------------------------------------------------------
# Schedule


def test_schedule_requests_previous_day_for_every_symbol(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    schedule = defs.get_repository_def().get_schedule_def(DAILY_SCHEDULE)
    assert schedule.cron_schedule == "0 7 * * *"  # after Tardis (~06:00 UTC) and Binance publish the day
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == BUILD_JOB
    assert schedule.default_status == DefaultScheduleStatus.STOPPED

    runs = requested(defs, DAILY_SCHEDULE, at("07:00", dt.date(2024, 1, 3)))
    assert [r.partition_key for r in runs] == ["2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT"]
    # The run key is the partition: a tick evaluated twice never launches a partition twice.
    assert [r.run_key for r in runs] == ["2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT"]
    assert all(r.tags["hedgegrid/trigger"] == "schedule" and r.tags["hedgegrid/source"] == "sample" for r in runs)


def test_schedule_time_comes_from_settings(tmp_path):
    settings = make_settings(tmp_path, symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], schedule_time=dt.time(23, 45))
    defs = build_definitions(settings)
    schedule = defs.get_repository_def().get_schedule_def(DAILY_SCHEDULE)
    assert schedule.cron_schedule == "45 23 * * *"
    # Late in the day it is still the previous (closed) UTC day that gets built.
    runs = requested(defs, DAILY_SCHEDULE, at("23:45", dt.date(2024, 3, 1)))
    assert [r.partition_key for r in runs] == ["2024-02-29|BTCUSDT", "2024-02-29|ETHUSDT", "2024-02-29|SOLUSDT"]


def test_automation_can_start_running(tmp_path):
    repo = build_definitions(make_settings(tmp_path, automation_running=True)).get_repository_def()
    assert repo.get_schedule_def(DAILY_SCHEDULE).default_status == DefaultScheduleStatus.RUNNING
    assert repo.get_sensor_def(FILE_DROP_SENSOR).default_status == DefaultSensorStatus.RUNNING
    repo = build_definitions(make_settings(tmp_path)).get_repository_def()
    assert repo.get_sensor_def(FILE_DROP_SENSOR).default_status == DefaultSensorStatus.STOPPED


def test_scheduled_runs_retry_transient_source_errors(tmp_path):
    """The scheduled job's download step carries the raw asset's retry policy."""
    job = build_definitions(make_settings(tmp_path)).resolve_job_def(BUILD_JOB)
    policy = job.get_retry_policy_for_handle(NodeHandle(RAW_ASSET, None))
    assert policy is not None and policy.max_retries >= 1 and policy.delay


# ---------------------------------------------------------------------------------------------
# File-drop sensor


class Landing:
    """A landing folder, the sensor over it, and a persistent cursor like the daemon keeps."""

    def __init__(self, tmp_path: Path, **overrides):
        self.dir = tmp_path / "landing"
        self.dir.mkdir(exist_ok=True)
        # Files are ticked at once after they are written: no settle time unless a test asks.
        settings = make_settings(tmp_path, **({"landing_dir": self.dir, "landing_settle_seconds": 0} | overrides))
        self.defs = build_definitions(settings)
        self.repo = self.defs.get_repository_def()
        self.sensor = self.repo.get_sensor_def(FILE_DROP_SENSOR)
        self.cursor: str | None = None
        self.instance = DagsterInstance.ephemeral()

    def drop(self, rel: str, content: bytes | str, mtime_ns: int = T0) -> Path:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        return path

    def tick(self, cursor: str | None | type(...) = ...):
        context = build_sensor_context(
            cursor=self.cursor if cursor is ... else cursor, repository_def=self.repo, instance=self.instance
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data

    def keys(self, data) -> list[str]:
        return sorted(r.partition_key for r in data.run_requests)


def run_key(path: Path, partition: str) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_mtime_ns}:{st.st_size}:{partition}"


TARDIS_TRADES = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"


def tardis_rows(symbol: str, *times: dt.datetime) -> str:
    rows = [
        f"binance-futures,{symbol},{int(t.timestamp() * 1e6)},{int(t.timestamp() * 1e6) + 900},{i},buy,42000.1,0.003"
        for i, t in enumerate(times)
    ]
    return TARDIS_TRADES + "\n".join(rows) + "\n"


def ws_line(symbol: str, t: dt.datetime, recv: bool = False) -> str:
    ms = int(t.timestamp() * 1000)
    data = {"e": "aggTrade", "E": ms + 5, "s": symbol, "a": ms, "p": "42000.1", "q": "0.003", "T": ms, "m": False}
    line = json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": data})
    return (t.strftime("%Y-%m-%dT%H:%M:%S.0000000Z ") + line) if recv else line


def test_no_landing_folder_means_idle(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    sensor = defs.get_repository_def().get_sensor_def(FILE_DROP_SENSOR)
    data = sensor.evaluate_tick(build_sensor_context(repository_def=defs.get_repository_def()))
    assert not data.run_requests and "landing_dir" in data.skip_message


def test_new_file_requests_its_partition_once_and_a_changed_file_again(tmp_path):
    landing = Landing(tmp_path)
    f = landing.drop("BTCUSDT-trades-2024-01-02.csv", tardis_rows("BTCUSDT", dt.datetime(2024, 1, 2, 12, tzinfo=UTC)))
    landing.drop("notes.txt", "not market data")
    landing.drop("ETHUSDT-trades-2024-01-02.csv.part", "still downloading")

    first = landing.tick()
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [
        ("2024-01-02|BTCUSDT", run_key(f, "2024-01-02|BTCUSDT"))
    ]
    assert first.run_requests[0].tags[FILE_TAG] == f.name
    assert first.run_requests[0].tags["hedgegrid/trigger"] == "file-drop"

    # Next tick with the kept cursor: nothing new.
    assert not landing.tick().run_requests
    # Cursor lost or reset in the UI: the same file yields the same run keys, which Dagster
    # refuses to launch twice.
    again = landing.tick(cursor=None)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]

    # The file is rewritten (touched, or new bytes): a new run key, so it triggers again.
    os.utime(f, ns=(T0 + 10**9, T0 + 10**9))
    touched = landing.tick()
    assert landing.keys(touched) == ["2024-01-02|BTCUSDT"]
    assert touched.run_requests[0].run_key == run_key(f, "2024-01-02|BTCUSDT") != first.run_requests[0].run_key
    f.write_text(f.read_text() + "binance-futures,BTCUSDT,1704196800000000,1704196800000900,9,sell,42000.2,0.004\n")
    os.utime(f, ns=(T0 + 10**9, T0 + 10**9))  # same mtime, other size
    changed = landing.tick()
    assert [r.run_key for r in changed.run_requests] == [run_key(f, "2024-01-02|BTCUSDT")]
    assert not landing.tick().run_requests


def test_two_files_with_the_same_mtime_are_both_picked_up(tmp_path):
    landing = Landing(tmp_path)
    landing.drop("a/BTCUSDT_2024-01-02.jsonl", ws_line("BTCUSDT", dt.datetime(2024, 1, 2, 1, tzinfo=UTC)) + "\n")
    assert landing.keys(landing.tick()) == ["2024-01-02|BTCUSDT"]
    # Lands later but carries the same mtime (copied with its timestamps kept).
    landing.drop("b/ethusdt_2024-01-02.jsonl.gz", gzip.compress(b"{}\n"))
    assert landing.keys(landing.tick()) == ["2024-01-02|ETHUSDT"]
    assert not landing.tick().run_requests


def test_a_file_copied_with_an_older_mtime_than_the_last_handled_is_picked_up(tmp_path):
    landing = Landing(tmp_path)
    landing.drop(
        "BTCUSDT_2024-01-02.jsonl",
        ws_line("BTCUSDT", dt.datetime(2024, 1, 2, 1, tzinfo=UTC)) + "\n",
        mtime_ns=T0 + 10**12,
    )
    assert landing.keys(landing.tick()) == ["2024-01-02|BTCUSDT"]
    # `cp -p` / `rsync -a` of a file written long before: its mtime is older than the cursor's.
    old = landing.drop(
        "ETHUSDT_2024-01-02.jsonl", ws_line("ETHUSDT", dt.datetime(2024, 1, 2, 1, tzinfo=UTC)) + "\n", mtime_ns=T0
    )
    data = landing.tick()
    assert [(r.partition_key, r.run_key) for r in data.run_requests] == [
        ("2024-01-02|ETHUSDT", run_key(old, "2024-01-02|ETHUSDT"))
    ]
    assert not landing.tick().run_requests
    # A cursor from before change times (keyed "mtime_ns") still reads.
    assert Cursor.parse('{"mtime_ns": 5, "seen": ["x"]}') == Cursor(5, frozenset(["x"]))


def test_time_range_read_from_a_csv_without_date_in_its_name(tmp_path):
    landing = Landing(tmp_path)
    body = tardis_rows(
        "ETHUSDT", dt.datetime(2024, 1, 1, 23, 59, tzinfo=UTC), dt.datetime(2024, 1, 3, 0, 1, tzinfo=UTC)
    )
    landing.drop("ethusdt-trades-export.csv.gz", gzip.compress(body.encode()))
    assert landing.keys(landing.tick()) == ["2024-01-01|ETHUSDT", "2024-01-02|ETHUSDT", "2024-01-03|ETHUSDT"]


def test_symbols_and_days_read_from_a_jsonl_recording(tmp_path):
    """No date or symbol in the name: E gives the days, s the symbols; a truncated line is ignored."""
    landing = Landing(tmp_path)
    lines = [
        ws_line("BTCUSDT", dt.datetime(2024, 1, 2, 0, 0, 1, tzinfo=UTC), recv=True),
        ws_line("ETHUSDT", dt.datetime(2024, 1, 2, 13, tzinfo=UTC), recv=True),
        ws_line("BTCUSDT", dt.datetime(2024, 1, 3, 8, tzinfo=UTC), recv=True),
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTr',  # recorder killed mid-line
    ]
    landing.drop("recorder/session-7.jsonl", "\n".join(lines))
    assert landing.keys(landing.tick()) == [
        "2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT", "2024-01-03|BTCUSDT", "2024-01-03|ETHUSDT"
    ]  # fmt: skip


def test_compressed_and_headerless_binance_files(tmp_path):
    landing = Landing(tmp_path)
    ms = int(dt.datetime(2024, 1, 2, 6, tzinfo=UTC).timestamp() * 1000)
    # data.binance.vision trades, no header (files before 2022-08-11 have none): id,price,qty,quote_qty,time,maker
    headerless = (
        f"4200000001,42000.1,0.003,126.0003,{ms},true\n4200000002,42000.2,0.001,42.0002,{ms + 3_600_000},false\n"
    )
    buf = tmp_path / "z.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BTCUSDT-trades-2024-01-02.csv", headerless)
    landing.drop("vision/btcusdt/trades-export.zip", buf.read_bytes())
    landing.drop(
        "eth-dump.csv.bz2", bz2.compress(tardis_rows("ETHUSDT", dt.datetime(2024, 1, 1, 5, tzinfo=UTC)).encode())
    )
    assert landing.keys(landing.tick()) == ["2024-01-01|ETHUSDT", "2024-01-02|BTCUSDT"]


def test_no_symbol_anywhere_means_every_configured_symbol(tmp_path):
    landing = Landing(tmp_path)
    landing.drop(
        "funding/2024-01-02.csv", "calc_time,funding_interval_hours,last_funding_rate\n1704182400000,8,0.0001\n"
    )
    assert landing.keys(landing.tick()) == ["2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT"]


def test_unknown_symbols_early_and_open_days_are_skipped(tmp_path):
    landing = Landing(tmp_path)
    landing.drop("SOLUSDT-trades-2024-01-02.csv", tardis_rows("SOLUSDT", dt.datetime(2024, 1, 2, tzinfo=UTC)))
    landing.drop("dump.csv", tardis_rows("DOGEUSDT", dt.datetime(2024, 1, 2, tzinfo=UTC)))
    landing.drop("BTCUSDT-trades-2023-12-31.csv", tardis_rows("BTCUSDT", dt.datetime(2023, 12, 31, tzinfo=UTC)))
    landing.drop("ETHUSDT-trades-2099-01-01.csv", tardis_rows("ETHUSDT", dt.datetime(2099, 1, 1, tzinfo=UTC)))
    data = landing.tick()
    assert not data.run_requests
    assert "SOLUSDT is not configured" in data.skip_message
    assert "DOGEUSDT, none configured" in data.skip_message
    assert "2023-12-31..2023-12-31 x BTCUSDT: before start_date 2024-01-01" in data.skip_message
    assert "2099-01-01..2099-01-01 x ETHUSDT: the UTC day has not closed yet" in data.skip_message

    # A span read from the contents that straddles start_date keeps the days inside it.
    landing.drop(
        "btcusdt-span.csv",
        tardis_rows("BTCUSDT", dt.datetime(2023, 12, 31, tzinfo=UTC), dt.datetime(2024, 1, 1, 3, tzinfo=UTC)),
        mtime_ns=T0 + 1,
    )
    data = landing.tick()
    assert landing.keys(data) == ["2024-01-01|BTCUSDT"]


def test_an_unreadable_file_does_not_stop_the_others(tmp_path):
    landing = Landing(tmp_path)
    landing.drop("broken.zip", b"PK\x03\x04 this is not a zip")
    landing.drop("BTCUSDT-2024-01-01.csv", tardis_rows("BTCUSDT", dt.datetime(2024, 1, 1, tzinfo=UTC)), mtime_ns=T0 + 1)
    data = landing.tick()
    assert landing.keys(data) == ["2024-01-01|BTCUSDT"]
    assert not landing.tick().run_requests  # the broken file waits until it changes


def test_files_still_being_written_wait(tmp_path):
    landing = Landing(tmp_path, landing_settle_seconds=3600)
    landing.drop("BTCUSDT-2024-01-01.csv", "x", mtime_ns=dt.datetime.now(UTC).timestamp().__int__() * 10**9)
    data = landing.tick()
    assert not data.run_requests and "still being written" in data.skip_message
    assert Cursor.parse(landing.cursor).changed_ns == -1  # not consumed
    # Copied in just now with an old mtime kept (cp -p): just as fresh, it waits too.
    landing.drop("ETHUSDT-2024-01-01.csv", "x", mtime_ns=T0)
    assert not landing.tick().run_requests and Cursor.parse(landing.cursor).changed_ns == -1


def test_source_config_path_templates_map_files_and_give_the_folder(tmp_path):
    """csv/jsonl source config: `{date}`, `{symbol}`, `{symbol_lower}` placeholders; base_path is watched."""
    base = tmp_path / "vendor"
    config = tmp_path / "source.json"
    config.write_text(
        json.dumps(
            {
                "base_path": "vendor",  # relative to the config file
                "files": {
                    "trades": {"file_path": "trades/{symbol_lower}/day={date}/part-0.csv.gz"},
                    "mark_prices": {"file_path": "mark/{date}/{symbol}.jsonl"},
                },
            }
        )
    )
    settings = make_settings(tmp_path, source_config=config, landing_settle_seconds=0)
    defs = build_definitions(settings)
    sensor = defs.get_repository_def().get_sensor_def(FILE_DROP_SENSOR)
    assert str(base) in sensor.description

    for rel, body in [
        ("trades/ethusdt/day=2024-01-02/part-0.csv.gz", gzip.compress(b"")),
        ("mark/2024-01-01/BTCUSDT.jsonl", b""),
    ]:
        p = base / rel
        p.parent.mkdir(parents=True)
        p.write_bytes(body)
        os.utime(p, ns=(T0, T0))
    data = sensor.evaluate_tick(build_sensor_context(repository_def=defs.get_repository_def()))
    assert sorted(r.partition_key for r in data.run_requests) == ["2024-01-01|BTCUSDT", "2024-01-02|ETHUSDT"]


def test_template_regex():
    rx = template_regex("{symbol}/{date}/{symbol}_{date}_{kind}.csv")
    m = rx.search("/data/in/BTCUSDT/2024-01-02/BTCUSDT_2024-01-02_trades.csv.gz")
    assert m and m["symbol"] == "BTCUSDT" and m["date"] == "2024-01-02"
    assert not rx.search("/data/in/BTCUSDT/2024-01-02/ETHUSDT_2024-01-02_trades.csv")


# ---------------------------------------------------------------------------------------------
# Instance and workspace


def test_instance_config(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue.max_concurrent_runs == 2
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
            queue.tag_concurrency_limits
        )
        assert concurrency.pool_config.default_pool_limit == 2
        assert instance.run_retries_enabled and not instance.run_retries_retry_on_asset_or_op_failure
        assert not instance.telemetry_enabled
        # sqlite storage under the instance folder
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        instance.event_log_storage.set_concurrency_slots("tardis", 2)
        assert instance.event_log_storage.get_concurrency_info("tardis").slot_count == 2
    assert (home / "history" / "runs.db").exists()


def test_workspace_loads_the_code_location():
    workspace = (REPO / "workspace.yaml").read_text()
    assert "module_name: hedgegrid_assets" in workspace
    import hedgegrid_assets

    repo = hedgegrid_assets.defs.get_repository_def()
    assert DAILY_SCHEDULE in {s.name for s in repo.schedule_defs}
    assert FILE_DROP_SENSOR in {s.name for s in repo.sensor_defs}


def test_conventional_vendor_names_under_a_format_config(tmp_path):
    """`format: tardis` / `binance` configs have no templates: names and contents tell."""
    config = tmp_path / "vendor.json"
    config.write_text(json.dumps({"format": "binance", "base_path": "vision"}))
    defs = build_definitions(make_settings(tmp_path, source="csv", source_config=config, landing_settle_seconds=0))
    repo = defs.get_repository_def()
    base = tmp_path / "vision"
    base.mkdir()
    (base / "binance-futures_trades_2024-01-02_ETHUSDT.csv.gz").write_bytes(gzip.compress(b"exchange,symbol\n"))
    # Monthly funding file: no day in the name, so its calc_time range gives the days.
    rows = "calc_time,funding_interval_hours,last_funding_rate\n" + "".join(
        f"{int(dt.datetime(2024, 1, d, h, tzinfo=UTC).timestamp() * 1000)},8,0.0001\n"
        for d in range(1, 32)
        for h in (0, 8, 16)
    )
    with zipfile.ZipFile(base / "BTCUSDT-fundingRate-2024-01.zip", "w") as zf:
        zf.writestr("BTCUSDT-fundingRate-2024-01.csv", rows)
    (base / "BTCUSDT-fundingRate-2024-01.zip.CHECKSUM").write_text("abc  BTCUSDT-fundingRate-2024-01.zip\n")
    data = repo.get_sensor_def(FILE_DROP_SENSOR).evaluate_tick(build_sensor_context(repository_def=repo))
    keys = sorted(r.partition_key for r in data.run_requests)
    assert keys == sorted([f"2024-01-{d:02d}|BTCUSDT" for d in range(1, 32)] + ["2024-01-02|ETHUSDT"])

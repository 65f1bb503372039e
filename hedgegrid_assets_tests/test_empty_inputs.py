"""An empty input is not an empty day (issue 10, point 4): a kind the source offers that comes
out with no rows fails the partition naming the file, and the catalog day stays as it was;
--allow-empty writes the day as empty; a kind the source does not offer is simply absent."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from hedgegrid_assets.catalog.writer import partition_path
from hedgegrid_assets.frames import FUNDING_RATES, TRADES
from hedgegrid_assets.partitions import partition_context, partition_key
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
from hedgegrid_assets_tests.test_cli import BIN, run

DAY = dt.date(2024, 1, 2)
T0 = int(dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp() * 1000)
KEY = partition_key(DAY, "BTCUSDT")


def write_day(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    trades = ["time,price,qty,side,id"] + [
        f"{T0 + i * 60_000},{42000 + i % 7}.{i % 10},0.00{1 + i % 9},{'buy' if i % 2 else 'sell'},{1000 + i}"
        for i in range(1440)
    ]
    marks = ["time,mark_price"] + [f"{T0 + i * 60_000 + 5},{42003.25 + i % 3}" for i in range(1440)]
    funding = ["time,funding_rate,next_funding_time"] + [
        f"{T0 + h * 3_600_000},0.0001,{T0 + (h // 8 + 1) * 8 * 3_600_000}" for h in range(24)
    ]
    paths = {}
    for name, lines in (("trades", trades), ("mark", marks), ("funding", funding)):
        paths[name] = folder / f"BTCUSDT-{name}-2024-01-02.csv"
        paths[name].write_text("\n".join(lines) + "\n")
    return paths


def config(tmp_path: Path, folder: Path, kinds=("trades", "mark", "funding")) -> Path:
    path = tmp_path / f"cfg-{'-'.join(kinds)}.json"
    files = {k: {"file_path": f"{{symbol}}-{k}-{{date}}.csv"} for k in kinds}
    path.write_text(json.dumps({"base_path": str(folder), "files": files}))
    return path


def catalog_bytes(settings, kind) -> bytes:
    return partition_path(settings.catalog_path, kind, partition_context(KEY, settings)).read_bytes()


def failure(result) -> str:
    return " ".join(ev.step_failure_data.user_failure_data.description for ev in result.get_step_failure_events())


@pytest.mark.parametrize("emptiness", ["zero_bytes", "header_only", "empty_gzip"])
def test_an_empty_file_fails_and_keeps_the_catalog_day(tmp_path, emptiness):
    folder = tmp_path / "in"
    paths = write_day(folder)
    settings = make_settings(
        tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=config(tmp_path, folder)
    )
    instance = make_instance(tmp_path)
    assert build(settings, instance, [KEY])[str(KEY)].success
    before = catalog_bytes(settings, TRADES)

    trades = paths["trades"]
    if emptiness == "zero_bytes":
        trades.write_bytes(b"")
    elif emptiness == "header_only":
        trades.write_text("time,price,qty,side,id\n")
    else:
        trades.unlink()
        trades = trades.with_suffix(".csv.gz")
        with gzip.open(trades, "wb"):
            pass
        (folder / "cfg").mkdir()
        cfg = folder / "cfg" / "c.json"
        cfg.write_text(json.dumps({"base_path": str(folder), "files": {
            "trades": {"file_path": "{symbol}-trades-{date}.csv.gz"}, "mark": {"file_path": "{symbol}-mark-{date}.csv"},
            "funding": {"file_path": "{symbol}-funding-{date}.csv"}}}))  # fmt: skip
        settings = settings.model_copy(update={"source_config": cfg})
    result = build(settings, instance, [KEY], raise_on_error=False)[str(KEY)]
    assert not result.success
    said = failure(result)
    assert f"no trades rows in {trades}:" in said and "catalog keeps this day as it was" in said
    assert catalog_bytes(settings, TRADES) == before


def test_allow_empty_writes_the_day_as_empty_from_the_command_line(tmp_path):
    folder = tmp_path / "in"
    paths = write_day(folder)
    cfg = config(tmp_path, folder)
    args = [str(BIN / "hedgegrid"), "build", "--source", "csv", "--config", str(cfg), "--symbol", "BTCUSDT",
            "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / "data")]  # fmt: skip
    assert run(args, tmp_path).returncode == 0
    paths["trades"].write_text("time,price,qty,side,id\n")
    refused = run(args, tmp_path)
    assert refused.returncode == 1 and f"no trades rows in {paths['trades']}:" in refused.stdout
    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    assert partition_path(settings.catalog_path, TRADES, partition_context(KEY, settings)).exists()
    allowed = run([*args, "--allow-empty", "--data-types", "trades"], tmp_path)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "ok  trades=0" in allowed.stdout
    assert not partition_path(settings.catalog_path, TRADES, partition_context(KEY, settings)).exists()


def test_a_kind_the_config_leaves_out_is_absent_and_its_old_day_stays(tmp_path):
    folder = tmp_path / "in"
    write_day(folder)
    settings = make_settings(
        tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=config(tmp_path, folder)
    )
    instance = make_instance(tmp_path)
    assert build(settings, instance, [KEY])[str(KEY)].success
    funding = catalog_bytes(settings, FUNDING_RATES)
    without = settings.model_copy(update={"source_config": config(tmp_path, folder, ("trades", "mark"))})
    result = build(without, instance, [KEY])[str(KEY)]
    assert result.success  # not offered: no error, no warning about it
    assert catalog_bytes(settings, FUNDING_RATES) == funding  # and nothing replaced the old day


def test_an_empty_jsonl_recording_fails_naming_it(tmp_path):
    recording = tmp_path / "rec" / "BTCUSDT-2024-01-02.jsonl"
    recording.parent.mkdir()
    recording.write_text("")
    cfg = tmp_path / "j.json"
    cfg.write_text(
        json.dumps({"base_path": str(recording.parent), "files": {"trades": {"file_path": "{symbol}-{date}.jsonl"}}})
    )
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="jsonl", source_config=cfg)
    result = build(settings, make_instance(tmp_path), [KEY], raise_on_error=False)[str(KEY)]
    assert not result.success and f"no trades rows in {recording}:" in failure(result)

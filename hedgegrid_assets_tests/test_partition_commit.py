"""A partition is committed as a whole (issue 10, point 3): whatever happens, a reader finds
all of its kinds as they were or all of them new, never a mix.

Crashes are real: `hedgegrid build` runs in a child process that SIGKILLs itself at an aimed
file operation (a Python audit hook sees each rename, link, mkdir and delete before it
happens). After the kill, recovery (`hedgegrid verify`, `hedgegrid catalog repair`, or the
next build) must leave exactly the old partition or exactly the new one, byte for byte.
Failures that are not crashes (a failing check of any kind, no space left, a read-only file
system) must leave the old partition untouched, with a message naming the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hedgegrid_assets.catalog import journal
from hedgegrid_assets.catalog.instance_binding import CATALOG_MARKER
from hedgegrid_assets.checks import coverage
from hedgegrid_assets.cli import main
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import ChecksSettings, SampleSettings
from hedgegrid_assets_tests.conftest import DAYS, build, make_instance, make_settings, materializations
from hedgegrid_assets_tests.test_cli import run

KINDS_DIRS = ("trade_tick", "mark_price_update", "funding_rate_update")
BUILD = ["--symbol", "BTCUSDT", "--start", "2024-01-02", "--end", "2024-01-03"]

# The child: a `hedgegrid build` that kills itself just before the n-th file operation of
# `event` whose paths contain `needle`.
KILLER = """
import os, signal, sys
event, needle, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = 0
def hook(name, args):
    global seen
    if name == event and any(needle in str(a) for a in args[:2]):
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
from hedgegrid_assets.cli import main
sys.exit(main(sys.argv[4:]))
"""


def kind_files(catalog: Path) -> dict[str, str]:
    """Each kind's catalog files of the partition: {relative path: sha256}."""
    found = {}
    for kind in KINDS_DIRS:
        for path in sorted((catalog / "data" / kind).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(catalog))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def copy_catalog(src: Path, dst: Path) -> None:
    """A copy is another catalog: it drops the original's instance binding, and the instance
    that next builds it binds it afresh (see catalog/instance_binding.py)."""
    shutil.copytree(src, dst)
    for marker in dst.rglob(CATALOG_MARKER):
        marker.unlink()


def built_catalog(tmp_path: Path, name: str, seed: int) -> dict[str, str]:
    (tmp_path / name).mkdir()
    proc = run([sys.executable, "-m", "hedgegrid_assets.cli", "build", *BUILD, "--data-dir", str(tmp_path / name)],
               tmp_path / name, HEDGEGRID_SAMPLE__SEED=str(seed))  # each catalog its own instance  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return kind_files(tmp_path / name / "catalog")


@pytest.fixture(scope="module")
def old_and_new(tmp_path_factory):
    """The same partition built from two different inputs (sample seeds 7 and 8)."""
    base = tmp_path_factory.mktemp("commit")
    old, new = built_catalog(base, "old", 7), built_catalog(base, "new", 8)
    assert len(old) == len(new) == 3 and old.keys() == new.keys() and old != new
    assert all(old[k] != new[k] for k in old)  # every kind differs, so a mix would show
    return base, old, new


# (event, substring of a path, nth such event, which partition must stand after recovery)
AIMED = {
    "while staging, before the second kind's file": ("os.mkdir", "/catalog/data/mark_price_update", 1, "old"),
    "after staging, linking the old files": ("os.link", "/catalog/data/", 1, "old"),
    "writing the intent record": ("os.rename", journal.INTENT, 1, "old"),
    "after the intent, before any rename": ("os.rename", "stage-0", 1, "new"),
    "after the first rename": ("os.rename", "stage-1", 1, "new"),
    "after the second rename": ("os.rename", "stage-2", 1, "new"),
    "after every rename, clearing the journal": ("os.remove", journal.INTENT, 1, "new"),
}


@pytest.mark.parametrize("point", list(AIMED))
def test_kill_at_an_aimed_point_leaves_old_or_new(old_and_new, tmp_path, point, capsys):
    base, old, new = old_and_new
    event, needle, nth, expected = AIMED[point]
    data = tmp_path / "d"
    copy_catalog(base / "old", data)
    proc = run([sys.executable, "-c", KILLER, event, needle, str(nth), "build", *BUILD, "--data-dir", str(data)],
               tmp_path, HEDGEGRID_SAMPLE__SEED="8")  # fmt: skip
    assert proc.returncode == -9, f"the build was not killed at {point}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
    catalog = data / "catalog"
    assert journal.pending(catalog), "the kill left no commit to recover: the aim missed"
    # Nautilus never sees journal or temporary files: they are outside data/.
    assert not [p for p in (catalog / "data").rglob("*") if p.name.startswith(".") or "stage-" in p.name]

    assert main(["verify", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    said = "finished an interrupted commit" if expected == "new" else "discarded an unfinished commit"
    assert said in out, out
    assert kind_files(catalog) == (new if expected == "new" else old)
    assert not journal.pending(catalog)


def test_repair_and_the_next_build_recover_too(old_and_new, tmp_path, capsys):
    base, old, new = old_and_new
    for n, recover in enumerate(("repair", "build")):
        data = tmp_path / f"d{n}"
        copy_catalog(base / "old", data)
        home = tmp_path / f"h{n}"  # each copy its own instance, as each catalog has
        home.mkdir()
        proc = run([sys.executable, "-c", KILLER, "os.rename", "stage-1", "1", "build", *BUILD, "--data-dir", str(data)],
                   home, HEDGEGRID_SAMPLE__SEED="8")  # fmt: skip
        assert proc.returncode == -9
        if recover == "repair":
            assert main(["catalog", "repair", str(data / "catalog"), "--data-dir", str(data)]) == 0
            assert "1 interrupted commit(s) recovered" in capsys.readouterr().out
            assert kind_files(data / "catalog") == new
        else:  # a build of another partition leaves it; a build of it recovers it first
            settings = make_settings(tmp_path / f"d{n}-x", symbols=["BTCUSDT"], data_dir=data)
            key = partition_key(DAYS[1], "BTCUSDT")
            journal_before = journal.pending(data / "catalog")
            assert journal_before
            instance = make_instance(home)  # the catalog's own instance
            result = build(settings, instance, [key])[str(key)]
            logs = [e.user_message for e in instance.all_logs(result.run_id) if "interrupted commit" in e.user_message]
            assert logs and "the new partition stands" in logs[0]
            assert not journal.pending(data / "catalog")


def test_a_failing_check_of_any_kind_keeps_every_kind_old(old_and_new, tmp_path):
    base, old, _ = old_and_new
    data = tmp_path / "d"
    copy_catalog(base / "old", data)
    # A mark-price band far too tight fails the marks' blocking check; trades and funding are
    # fine, and the input is new (seed 8): before, the new trades went in anyway.
    settings = make_settings(
        tmp_path,
        symbols=["BTCUSDT"],
        data_dir=data,
        checks=ChecksSettings(mark_price_band=1e-9),
        sample=SampleSettings(trades_per_day=3000, seed=8),
    )
    key = partition_key(DAYS[1], "BTCUSDT")
    result = build(settings, make_instance(tmp_path), [key], raise_on_error=False)[str(key)]
    assert not result.success
    failed = {
        e.check_name for e in result.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"
    }
    assert failed == {coverage.MARK_BAND_CHECK}
    assert {"trades", "funding_rates"} <= set(materializations(result))  # their frames were good
    assert kind_files(data / "catalog") == old


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "3m")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_no_space_left_keeps_the_old_partition_and_says_where(old_and_new, tmp_path, small_disk):
    base, old, _ = old_and_new
    copy_catalog(base / "old" / "catalog", small_disk / "catalog")
    # Fill the disk but for a little: the new trades file cannot be staged.
    with open(small_disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    (small_disk / "filler").write_bytes((small_disk / "filler").read_bytes()[:-100_000])
    proc = run([sys.executable, "-m", "hedgegrid_assets.cli", "build", *BUILD, "--data-dir", str(tmp_path / "d"),
                "--catalog", str(small_disk / "catalog")], tmp_path, HEDGEGRID_SAMPLE__SEED="8")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no space left on the device" in proc.stdout, proc.stdout
    assert "Nothing of partition 2024-01-02|BTCUSDT was changed" in proc.stdout
    assert str(small_disk / "catalog" / "data") in proc.stdout  # the file it was writing
    assert kind_files(small_disk / "catalog") == old
    assert not journal.pending(small_disk / "catalog")


def test_a_read_only_catalog_keeps_the_old_partition_and_says_where(old_and_new, tmp_path, small_disk):
    base, old, _ = old_and_new
    copy_catalog(base / "old" / "catalog", small_disk / "catalog")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = run([sys.executable, "-m", "hedgegrid_assets.cli", "build", *BUILD, "--data-dir", str(tmp_path / "d"),
                "--catalog", str(small_disk / "catalog")], tmp_path, HEDGEGRID_SAMPLE__SEED="8")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the file system is read-only" in proc.stdout, proc.stdout
    assert str(small_disk / "catalog") in proc.stdout
    assert "keeps its old files" in proc.stdout
    assert kind_files(small_disk / "catalog") == old


def test_verify_finds_what_is_wrong(old_and_new, tmp_path, capsys):
    base, _, _ = old_and_new
    data = tmp_path / "d"
    copy_catalog(base / "old", data)
    assert main(["verify", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "6 catalog file(s)" in out  # trades, quotes, bars, marks, funding, book deltas
    assert "6 equal to their validated frame, value for value" in out
    # A file Nautilus reads fine but whose values are not the validated frame's: one mark price.
    marks = next((data / "catalog" / "data" / "mark_price_update").rglob("*.parquet"))
    table = pq.read_table(marks)
    values = table.column("value").to_pylist()
    values[7] = values[8]
    table = table.set_column(table.schema.get_field_index("value"), table.schema.field("value"),
                             pa.array(values, table.schema.field("value").type))  # fmt: skip
    pq.write_table(table, marks)
    assert main(["verify", "--data-dir", str(data)]) == 1
    assert f"{marks}: differs from its validated frame" in capsys.readouterr().err
    trades = next((data / "catalog" / "data" / "trade_tick").rglob("*.parquet"))
    trades.write_bytes(trades.read_bytes()[:-50])  # a torn file
    raw = next(p for p in (data / "raw").rglob("*") if p.is_file() and "_manifests" not in str(p))
    raw.write_bytes(raw.read_bytes() + b"x")  # an edited raw file
    stray = trades.with_name(".x.parquet.0123abcd.tmp")
    stray.write_bytes(b"half")
    os.utime(stray, (0, 0))  # an older release's temporary, long dead
    assert main(["verify", "--data-dir", str(data)]) == 1
    err = capsys.readouterr().err
    assert f"{trades}: unreadable Parquet" in err
    assert f"{raw}: changed since it was landed" in err
    assert f"{stray}: left by an interrupted write" in err
    assert main(["catalog", "repair", str(data / "catalog"), "--data-dir", str(data)]) == 0
    assert not stray.exists()


def _three_targets(root: Path) -> list[Path]:
    targets = [root / "data" / kind / "X-PERP.BINANCE" / "day.parquet" for kind in KINDS_DIRS]
    for i, t in enumerate(targets):
        t.parent.mkdir(parents=True)
        t.write_text(f"old-{i}")
    return targets


def _failing_replace(monkeypatch, fail_on: str, crash_on: str | None = None):
    real = os.replace

    def replace(src, dst, *a, **kw):
        name = Path(src).name
        if name == fail_on:
            raise OSError(5, "Input/output error")
        if name == crash_on:
            raise SystemExit("killed")  # stands for a crash: nothing after it runs
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


def test_a_rename_failing_after_the_commit_point_puts_the_old_files_back(tmp_path, monkeypatch):
    targets = _three_targets(tmp_path)
    tx = journal.PartitionCommit(tmp_path, "2024-01-02|BTCUSDT")
    for i, t in enumerate(targets):
        tx.stage(t).write_text(f"new-{i}")
    _failing_replace(monkeypatch, fail_on="stage-1.parquet")
    with pytest.raises(journal.CommitError, match="its old files were put back"):
        tx.commit()
    assert [t.read_text() for t in targets] == ["old-0", "old-1", "old-2"]
    assert not journal.pending(tmp_path)


def test_a_crash_while_undoing_goes_back_on_recovery(tmp_path, monkeypatch):
    targets = _three_targets(tmp_path)
    tx = journal.PartitionCommit(tmp_path, "2024-01-02|BTCUSDT")
    for i, t in enumerate(targets):
        tx.stage(t).write_text(f"new-{i}")
    _failing_replace(monkeypatch, fail_on="stage-1.parquet", crash_on="old-0.parquet")
    with pytest.raises(SystemExit):
        tx.commit()
    assert targets[0].read_text() == "new-0"  # half undone: a roll forward now would mix
    monkeypatch.undo()
    (line,) = journal.recover(tmp_path, "2024-01-02|BTCUSDT")
    assert "finished undoing a failed commit" in line
    assert [t.read_text() for t in targets] == ["old-0", "old-1", "old-2"]
    assert not journal.pending(tmp_path)


def test_a_new_kind_file_and_a_deletion_commit_and_recover_too(tmp_path):
    old = _three_targets(tmp_path)
    fresh = tmp_path / "data" / "bar" / "X-PERP.BINANCE" / "day.parquet"  # no file before
    tx = journal.PartitionCommit(tmp_path, "2024-01-02|BTCUSDT")
    tx.stage(fresh).write_text("new")
    tx.delete(old[2])  # --allow-empty: the day is now empty for this kind
    tx.commit()
    assert fresh.read_text() == "new" and not old[2].exists() and old[0].read_text() == "old-0"
    assert not journal.pending(tmp_path)

"""dagster.yaml's LocalInstance: a new DAGSTER_HOME's sqlite storage is created once, under a
lock, however many processes open the instance together (issue 26, point 5). The race itself,
two real builds on new instances ten times over, is in test_partition_lock.py."""

from __future__ import annotations

import subprocess
import sys

import yaml
from dagster import DagsterInstance

from hedgegrid_assets.local_instance import LOCK_FILE, MARKER_FILE, LocalInstance, initialise_once
from hedgegrid_assets_tests.conftest import REPO


def test_the_project_instance_is_a_local_instance(tmp_path):
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance) is LocalInstance
        assert instance.get_runs() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dagster.yaml", LOCK_FILE, MARKER_FILE, "history", "schedules"]
    )
    assert (tmp_path / "history" / "runs.db").is_file() and (tmp_path / "history" / "runs" / "index.db").is_file()
    assert not initialise_once(str(tmp_path))  # the marker: later opens never take the lock


def test_processes_opening_a_new_instance_together_all_succeed(tmp_path):
    """Six processes at once on each of three new homes (the stock instance fails about one
    pair in five here: 'table ... already exists'); exactly one of each six creates it."""
    code = (
        "import sys\nfrom hedgegrid_assets.local_instance import initialise_once\n"
        "from dagster import DagsterInstance\n"
        "created = initialise_once(sys.argv[1])\n"
        "with DagsterInstance.from_config(sys.argv[1]) as i: i.get_runs(limit=1)\n"
        "print(created)\n"
    )
    for n in range(3):
        home = tmp_path / f"home-{n}"
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(6)
        ]
        results = [(p.wait(timeout=120), p.stdout.read().decode().strip(), p.stderr.read().decode()) for p in procs]
        assert [r[0] for r in results] == [0] * 6, [r[2][-1500:] for r in results if r[0]]
        assert sorted(r[1] for r in results) == ["False"] * 5 + ["True"]


def test_an_instance_with_its_own_storage_is_left_to_it(tmp_path):
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "elsewhere")}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    assert not initialise_once(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dagster.yaml"]


def test_an_instance_from_before_opens_and_gets_its_marker(tmp_path):
    """A home whose storage Dagster's stock class created (no marker): nothing is re-created."""
    from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

    DagsterSqliteStorage.from_local(str(tmp_path)).dispose()
    runs_db = tmp_path / "history" / "runs.db"
    before = runs_db.stat().st_mtime_ns
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_runs() == []
    assert (tmp_path / MARKER_FILE).exists() and runs_db.stat().st_mtime_ns == before

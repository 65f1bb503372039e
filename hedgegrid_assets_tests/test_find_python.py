"""tools/find-python, the Makefile's interpreter search: a 3.12-3.14 that really runs, or one
line saying how to get one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hedgegrid_assets_tests.conftest import REPO

SCRIPT = REPO / "tools" / "find-python"


def find(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    return subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "no-uv")], env=base | env, capture_output=True, text=True, timeout=60
    )


def fake_python(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    major, minor = version.split(".")[:2]
    path.write_text(
        f'#!/bin/sh\n[ "$1" = -c ] && exec {sys.executable} -c "import sys; sys.exit(not ((3, 12) <= ({major}, {minor}) < (3, 15)))"\n'
    )
    path.chmod(0o755)
    return path


def test_takes_hedgegrid_python_when_it_runs(tmp_path):
    proc = find(tmp_path, HEDGEGRID_PYTHON=sys.executable)
    assert proc.returncode == 0 and proc.stdout.strip() == sys.executable


def test_finds_a_pyenv_version_and_skips_a_shim_that_does_not_run(tmp_path):
    fake_python(tmp_path / "pyenv" / "versions" / "3.11.7" / "bin" / "python3.11", "3.11.7")
    wanted = fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin" / "python3.13", "3.13.0")
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3.12").write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    (shims / "python3.12").chmod(0o755)
    proc = find(tmp_path, PATH=f"{shims}:/usr/bin:/bin")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(wanted)


def system_has_a_new_python() -> bool:
    names = ["python3", "python3.12", "python3.13", "python3.14"]
    candidates = [Path(d, n) for d in ("/usr/bin", "/bin") for n in names if Path(d, n).exists()]
    check = "import sys; sys.exit(not (3, 12) <= sys.version_info[:2] < (3, 15))"
    return any(subprocess.run([str(c), "-c", check]).returncode == 0 for c in candidates)


def test_none_found_is_one_line_saying_what_to_do(tmp_path):
    if system_has_a_new_python():
        pytest.skip("this machine has a system Python 3.12+ in /usr/bin")
    proc = find(tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Python 3.12, 3.13 or 3.14" in lines[0] and "HEDGEGRID_PYTHON" in lines[0]

"""The raw zone: each partition's files exactly as landed, plus a manifest of the landing.

Layout: `<data_dir>/raw/<source>/<date>/<SYMBOL>/<files>` and
`<data_dir>/raw/_manifests/<date>/<SYMBOL>.json` (which source landed last, file sizes and
sha256). Landings are atomic (a temporary folder renamed into place); nothing ever edits a
landed file: parsing only reads, and bad rows are quarantined to the staging area.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from dagster import ConfigurableIOManager, InputContext, OutputContext

from hedgegrid_assets.partitions import split_key


@dataclass(frozen=True)
class RawFile:
    name: str  # relative to the landing folder
    bytes: int
    sha256: str


@dataclass(frozen=True)
class RawLanding:
    source: str
    directory: str
    files: list[RawFile]

    @property
    def paths(self) -> list[Path]:
        return [Path(self.directory) / f.name for f in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def land_atomically(directory: Path, source: str, land: Callable[[Path], None]) -> RawLanding:
    """Run `land(tmp)` into a temporary sibling folder, then swap it in whole."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.landing-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        land(tmp)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = [
        RawFile(str(p.relative_to(directory)), p.stat().st_size, _sha256(p))
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    ]
    return RawLanding(source=source, directory=str(directory), files=files)


def landing_dir(raw_dir: Path, source: str, key) -> Path:
    day, symbol = split_key(key)
    return Path(raw_dir) / source / day.isoformat() / symbol


class RawZoneIOManager(ConfigurableIOManager):
    """Stores the landing manifest beside the raw zone; the raw files are already in place."""

    raw_dir: str

    def _manifest(self, key) -> Path:
        day, symbol = split_key(key)
        return Path(self.raw_dir) / "_manifests" / day.isoformat() / f"{symbol}.json"

    def handle_output(self, context: OutputContext, obj: RawLanding | dict[str, RawLanding]) -> None:
        landings = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
        for key, landing in landings.items():
            path = self._manifest(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(asdict(landing), indent=1))
            tmp.replace(path)

    def load_input(self, context: InputContext) -> RawLanding | dict[str, RawLanding]:
        landings = {str(k): self._load(k) for k in context.asset_partition_keys}
        return landings if len(landings) > 1 else next(iter(landings.values()))

    def _load(self, key) -> RawLanding:
        path = self._manifest(key)
        if not path.exists():
            raise FileNotFoundError(f"no raw data landed for partition {key}: materialize raw_market_data first")
        data = json.loads(path.read_text())
        return RawLanding(source=data["source"], directory=data["directory"], files=[RawFile(**f) for f in data["files"]])

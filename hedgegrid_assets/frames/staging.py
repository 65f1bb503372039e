"""The staging zone: validated frames as Parquet, one file per asset and partition."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext

from hedgegrid_assets.faults import refused_write
from hedgegrid_assets.names import inside
from hedgegrid_assets.partitions import split_key

# lz4: a 5M-trade day writes in 0.5 s and reads in 0.2 s (zstd, polars' default: 0.8 s and
# 0.3 s) for about 1.8x the bytes; staging is a working copy, read once by the catalog step.
COMPRESSION = "lz4"


class FrameHandoff:
    """A step's validated frames on their way to the staging zone. The IO manager writes them
    and empties the holder: Dagster's in-process runs (`hedgegrid build`, tests) keep every step
    output until the run ends, which for a 50,000,000-delta day would be 2 GB held through the
    catalog step. Runs launched by the daemon keep nothing either way."""

    def __init__(self, frames: dict[str, pl.DataFrame]) -> None:
        self.frames = frames


class FrameIOManager(ConfigurableIOManager):
    """`<staging_dir>/<asset>/<date>/<SYMBOL>.parquet`, written atomically."""

    staging_dir: str

    def path(self, asset: str, key) -> Path:
        day, symbol = split_key(key)
        return inside(self.staging_dir, Path(self.staging_dir) / asset / day.isoformat() / f"{symbol}.parquet")

    def handle_output(self, context: OutputContext, obj: FrameHandoff | pl.DataFrame | dict[str, pl.DataFrame]) -> None:
        if isinstance(obj, FrameHandoff):
            frames, obj.frames = obj.frames, {}
        else:
            frames = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
        for key, frame in frames.items():
            path = self.path(context.asset_key.path[-1], key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique: concurrent writers
            try:
                frame.write_parquet(tmp, compression=COMPRESSION)
                tmp.replace(path)
            except OSError as err:
                kept = "Nothing reached the catalog: it keeps the partition's old files"
                raise Failure(description=refused_write(str(key), "the validated frame", path, err, kept)) from None
            finally:
                tmp.unlink(missing_ok=True)

    def load_input(self, context: InputContext) -> pl.DataFrame | dict[str, pl.DataFrame]:
        """One partition: its frame; several (a batched run): {partition key: frame}."""
        frames = {str(k): self._load(context, k) for k in context.asset_partition_keys}
        return frames if len(frames) > 1 else next(iter(frames.values()))

    def _load(self, context: InputContext, key) -> pl.DataFrame:
        return self.read(context.asset_key.path[-1], key)

    def read(self, asset: str, key) -> pl.DataFrame:
        path = self.path(asset, key)
        if not path.exists():
            raise FileNotFoundError(f"{asset} has no frame for partition {key}: {path}")
        return pl.read_parquet(path)


class StagedFrameRefs(FrameIOManager):
    """Input manager of the catalog step: hands over a way to read each partition's staged
    frame, not the frame, so that a step writing some kinds never reads the others' frames
    (a subset multi-asset is still given every input) and holds one partition's at a time."""

    def load_input(self, context: InputContext) -> StagedFrames:
        return StagedFrames(self, context.asset_key.path[-1])


@dataclass(frozen=True)
class StagedFrames:
    manager: FrameIOManager
    asset: str

    def read(self, key: str) -> pl.DataFrame:
        return self.manager.read(self.asset, key)

"""The staging zone: validated frames as Parquet, one file per asset and partition."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext

from hedgegrid_assets.partitions import split_key


class FrameIOManager(ConfigurableIOManager):
    """`<staging_dir>/<asset>/<date>/<SYMBOL>.parquet`, written atomically."""

    staging_dir: str

    def path(self, asset: str, key) -> Path:
        day, symbol = split_key(key)
        return Path(self.staging_dir) / asset / day.isoformat() / f"{symbol}.parquet"

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        path = self.path(context.asset_key.path[-1], context.partition_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        obj.write_parquet(tmp)
        tmp.replace(path)

    def load_input(self, context: InputContext) -> pl.DataFrame:
        key = context.asset_partition_key
        path = self.path(context.asset_key.path[-1], key)
        if not path.exists():
            raise FileNotFoundError(f"{context.asset_key.to_user_string()} has no frame for partition {key}: {path}")
        return pl.read_parquet(path)

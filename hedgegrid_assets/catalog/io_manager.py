"""The IO manager that turns catalog assets' outputs into Nautilus catalog files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import ConfigurableIOManager, Failure, InputContext, MetadataValue, OutputContext

from hedgegrid_assets.catalog import provenance
from hedgegrid_assets.catalog.writer import CatalogCommit, CatalogWriteError, WrittenFile, write_instrument
from hedgegrid_assets.faults import refused_write


class NautilusCatalogIOManager(ConfigurableIOManager):
    """Writes each kind's partition as one file of the ParquetDataCatalog at `catalog_dir`,
    all kinds of a partition in one commit (the catalog step's outputs share a CatalogCommit)."""

    catalog_dir: str
    writer: str = "arrow"  # "arrow" (direct, columnar) or "nautilus" (write_data, the reference)
    allow_empty: bool = False  # an empty frame removes the day's file (else the file stays)

    @property
    def root(self) -> Path:
        return Path(self.catalog_dir)

    def handle_output(self, context: OutputContext, obj) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            provenance.check_writable(self.root)
        except provenance.IncompatibleCatalogError as err:
            raise Failure(description=str(err), allow_retries=False) from None
        if isinstance(obj, CatalogCommit):
            kind = next(k for k in obj.kinds if k.catalog_asset == context.asset_key.path[-1])
            try:
                written = obj.commit(self.root, self.writer, self.allow_empty)
            except CatalogWriteError as err:
                raise Failure(description=str(err), allow_retries=False) from None
            where = {"source": obj.source, "catalog": MetadataValue.path(str(self.root))}
            metadata = {key: self._file_metadata(files[kind.name], kind) | where for key, files in written.items()}
        else:  # instrument definitions
            items = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
            metadata = {str(key): self._instrument(str(key), item) for key, item in items.items()}
        provenance.record(self.root)
        if len(metadata) == 1:
            context.add_output_metadata(next(iter(metadata.values())))
        else:  # a batched run: each partition's materialization carries its own values
            for key, meta in metadata.items():
                context.step_context.add_asset_metadata(meta, asset_key=context.asset_key, partition_key=key)

    def _file_metadata(self, written: WrittenFile, kind) -> dict:
        return {
            "rows": written.rows,
            "catalog_file": MetadataValue.path(str(written.path)) if written.path else "(no rows, no file)",
            **({"kept_existing_file": MetadataValue.path(str(written.kept))} if written.kept else {}),
            "first_ts_init": written.first_ts_init,
            "last_ts_init": written.last_ts_init,
            "nautilus_class": kind.nautilus_cls.__name__,
            "writer": self.writer,
        }

    def _instrument(self, key: str, instrument) -> dict:
        try:
            path = write_instrument(self.root, instrument)
        except OSError as err:
            kept = "The catalog keeps its old files"
            raise Failure(
                description=refused_write(key, "the instrument", err.filename or self.root, err, kept)
            ) from None
        return {"instrument_id": instrument.id.value, "catalog_file": MetadataValue.path(str(path))}

    def load_input(self, context: InputContext) -> pl.DataFrame:
        raise NotImplementedError("catalog assets are read with Nautilus: ParquetDataCatalog(catalog_dir).query(...)")

"""The IO manager that turns catalog assets' outputs into Nautilus catalog files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import ConfigurableIOManager, Failure, InputContext, MetadataValue, OutputContext

from hedgegrid_assets.catalog import provenance
from hedgegrid_assets.catalog.writer import CatalogPartition, write_instrument, write_partition


class NautilusCatalogIOManager(ConfigurableIOManager):
    """Writes each kind's partition as one file of the ParquetDataCatalog at `catalog_dir`."""

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
        items = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
        metadata = {str(key): self._write(item) for key, item in items.items()}
        provenance.record(self.root)
        if len(metadata) == 1:
            context.add_output_metadata(next(iter(metadata.values())))
        else:  # a batched run: one materialization event per partition shares this metadata
            context.add_output_metadata(
                {
                    "partitions": len(metadata),
                    "rows": sum(m.get("rows", 0) for m in metadata.values()),
                    "rows_by_partition": {k: m.get("rows", 0) for k, m in metadata.items()},
                    "writer": self.writer,
                }
            )

    def _write(self, obj) -> dict:
        if isinstance(obj, CatalogPartition):
            written = write_partition(self.root, obj, self.writer, replace_with_empty=self.allow_empty)
            ts = obj.frame.get_column("ts_init")
            return {
                "rows": written.rows,
                "catalog_file": MetadataValue.path(str(written.path)) if written.path else "(no rows, no file)",
                **({"kept_existing_file": MetadataValue.path(str(written.kept))} if written.kept else {}),
                "first_ts_init": str(ts.min()) if written.rows else "",
                "last_ts_init": str(ts.max()) if written.rows else "",
                "nautilus_class": obj.kind.nautilus_cls.__name__,
                "writer": self.writer,
            }
        path = write_instrument(self.root, obj)  # an instrument definition
        return {"instrument_id": obj.id.value, "catalog_file": MetadataValue.path(str(path))}

    def load_input(self, context: InputContext) -> pl.DataFrame:
        raise NotImplementedError(
            "catalog assets are read with Nautilus: ParquetDataCatalog(catalog_dir).query(...)"
        )

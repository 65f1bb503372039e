"""What every source provides: land a partition's raw files, then parse them into frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import ConfigurableResource

from hedgegrid_assets.frames import DataKind, PartitionContext


@dataclass(frozen=True)
class LandingRequest:
    part: PartitionContext
    kinds: tuple[DataKind, ...]
    dest: Path  # an empty temporary folder; the caller renames it into the raw zone
    log: Callable[[str], None]
    shared: Path | None = None  # the raw zone's store for files many partitions read (landing/raw_zone.py)


# A kind's reader: landed files -> the kind's canonical frame (validation comes later), or
# (frame, notes): counts of what parsing skipped without failing (blank or truncated lines,
# event types no kind uses...), shown in the frame's metadata and schema check.
Reader = Callable[[list[Path], PartitionContext], "pl.DataFrame | tuple[pl.DataFrame, dict]"]


class MarketDataSource(ConfigurableResource, ABC):
    """A source of raw market data. Subclasses are Dagster resources bound as `source`.

    A source declares the kinds it offers by giving one reader per kind (`readers`), as
    Nautilus's Tardis loader has one method per data type. A kind without a reader is simply
    absent for this source: its frame is empty, nothing warns, nothing of it is written, and
    the completeness report does not expect it."""

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def land(self, request: LandingRequest) -> dict[str, str] | None:
        """Write the partition's raw files, exactly as received, into `request.dest`; may return
        the sha256 of files it already knows (by name), so that they are not read again."""

    @abstractmethod
    def readers(self) -> dict[str, Reader]:
        """One reader per kind this source offers, by kind name."""

    def offers(self, kind: DataKind, part: PartitionContext) -> bool:
        """Whether the source gives `kind` for the partition (a file source: if its config names it)."""
        return kind.name in self.readers()

    def read_frame_with_notes(
        self, kind: DataKind, files: list[Path], part: PartitionContext
    ) -> tuple[pl.DataFrame, dict]:
        """The kind's frame from the landed files, and what parsing skipped (see Reader)."""
        reader = self.readers().get(kind.name)
        if reader is None or not self.offers(kind, part):
            return kind.empty_frame(), {}
        out = reader(files, part)
        return out if isinstance(out, tuple) else (out, {})

    def read_frame(self, kind: DataKind, files: list[Path], part: PartitionContext) -> pl.DataFrame:
        return self.read_frame_with_notes(kind, files, part)[0]

    def inputs_of(self, kind: DataKind, files: list[Path], part: PartitionContext) -> list[str] | None:
        """The inputs `kind` is read from, as the user knows them; None when this source does
        not offer the kind for the partition (such a kind may come out empty; an offered one
        may not, unless the user allows it)."""
        return sorted(Path(f).name for f in files) if self.offers(kind, part) else None

"""What every source reading local files shares: `FileSource`, the files a config file names
(landing/source_config.py), landed exactly as they are (copied, hard-linked, or one shared copy
in the raw zone), with errors that name the user's own files rather than the landed copies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.frames import DataKind, PartitionContext
from hedgegrid_assets.landing.raw_zone import land_shared
from hedgegrid_assets.landing.source_config import PlannedFile, SourceConfig, land_file, load_config
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource


class FileSource(MarketDataSource):
    """A source reading local files named by a config file (`config_path`)."""

    config_path: str

    @property
    def config(self) -> SourceConfig:
        return load_config(self.config_path)

    def choice(self, key: str, choices: dict[str, str]) -> str | None:
        """The config's `key` as one of `choices` (spelled in any case); None when absent or 'auto'."""
        value = self.config.raw.get(key)
        if value is None or str(value).lower() == "auto":
            return None
        try:
            return choices[str(value).lower()]
        except KeyError:
            allowed = " or ".join(sorted(set(choices.values())))
            raise ConfigError(f"source config {self.config.path}: {key!r} must be {allowed}, not {value!r}") from None

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        """The files to land for a partition (the originals)."""
        raise NotImplementedError

    def offers(self, kind: DataKind, part: PartitionContext) -> bool:
        """A reader for the kind, and a file for it in the partition's plan (a config may leave
        a kind out) that is required or is there (a day without its optional quotes file has no
        quotes: nothing expects them, nothing warns)."""
        return super().offers(kind, part) and any(
            kind.name in p.kinds and (p.required or p.source.is_file()) for p in self.plan(part)
        )

    def verify_landed(self, landed: dict[str, Path], part: PartitionContext, log) -> None:
        """Hook: check the landed copies (checksums) before the landing is committed."""

    def land(self, request: LandingRequest) -> dict[str, str]:
        part = request.part
        planned = self.plan(part)
        missing = [p for p in planned if p.required and not p.source.is_file()]
        if missing:
            p = missing[0]
            raise SourceError(
                f"no file for partition {part.day}|{part.instrument.symbol}: {p.source} does not exist"
                + (f" (from {p.what})" if p.what else "")
            )
        landed: dict[str, Path] = {}
        known: dict[str, str] = {}
        for p in planned:
            if not p.source.is_file():
                request.log(f"optional file {p.source} is absent; skipped")
                continue
            dest = request.dest / p.name
            how = self.config.land_mode
            try:
                if p.shared and how == "copy" and request.shared is not None:
                    known[p.name] = land_shared(p.source, request.shared, dest)
                    how = "one copy in the raw zone for every partition it feeds, linked"
                else:
                    land_file(p.source, dest, how)
            except OSError as err:
                raise SourceError(f"{p.source}: cannot be read ({err.strerror or err})") from None
            landed[p.name] = dest
            request.log(f"landed {p.source} as {p.name} ({dest.stat().st_size:,} bytes, {how})")
        try:
            self.verify_landed(landed, part, request.log)
        except SourceError as err:  # name the user's files, not copies in a folder about to vanish
            text = str(err)
            for p in planned:
                text = text.replace(str(request.dest / p.name), str(p.source))
            raise SourceError(text) from None
        return known

    @contextmanager
    def naming_originals(self, files: list[Path], part: PartitionContext) -> Iterator[None]:
        """A SourceError about a landed copy also names the file it was landed from."""
        try:
            yield
        except SourceError as err:
            text = str(err)
            try:
                originals = {p.name: p.source for p in self.plan(part)}
            except SourceError:
                raise err from None
            copies = []
            for f in files:
                source = originals.get(Path(f).name)
                if source is not None and str(f) in text:
                    text = text.replace(str(f), str(source))
                    copies.append(str(f))
            if copies:
                text += f" (read from the landed copy {', '.join(copies)})"
            raise SourceError(text) from None

    def read_frame_with_notes(
        self, kind: DataKind, files: list[Path], part: PartitionContext
    ) -> tuple[pl.DataFrame, dict]:
        with self.naming_originals(files, part):
            return super().read_frame_with_notes(kind, files, part)

    def inputs_of(self, kind: DataKind, files: list[Path], part: PartitionContext) -> list[str] | None:
        """The original files of today's plan that hold `kind`; None when none does (a config
        may leave a kind out)."""
        found = self.landed_for(kind, files, part)
        return [str(planned.source) for planned, _ in found] if found else None

    def landed_for(self, kind: DataKind, files: list[Path], part: PartitionContext) -> list[tuple[PlannedFile, Path]]:
        """The landed copies this kind reads, matched by name to today's plan."""
        by_name = {Path(f).name: Path(f) for f in files}
        out = []
        for p in self.plan(part):
            if kind.name not in p.kinds:
                continue
            if p.name in by_name:
                out.append((p, by_name[p.name]))
            elif p.required:
                raise SourceError(
                    f"the raw zone for {part.day}|{part.instrument.symbol} has no landed copy of {p.source.name} "
                    f"(landed: {', '.join(sorted(by_name)) or 'nothing'}); the source config changed since the "
                    "landing: re-materialize raw_market_data"
                )
        return out

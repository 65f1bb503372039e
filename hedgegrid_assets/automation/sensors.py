"""The file-drop sensor: new or changed CSV/JSONL files in the landing folder -> partition runs.

Every tick lists the landing folder (recursively) for `.csv`, `.csv.gz`, `.zip`, `.bz2`,
`.jsonl` and `.jsonl.gz` files, maps each new or changed file to its `date|symbol`
partitions (see `landing.py`) and requests one build run per partition.

Deduplication is by run key, `<path>:<mtime_ns>:<size>:<partition>`: Dagster never launches
two runs with the same key for a sensor, so a file never triggers twice, while a file that is
rewritten (new mtime or size) triggers again. The cursor only saves work: it remembers the
newest change time handled (and which files carried it), so older files are not re-read each
tick. A file's change time is the later of its mtime and its ctime: the ctime is set by the
system whenever a file appears (copied, moved in) or changes, so a file copied with its old
mtime kept (`cp -p`, `rsync -a`) is still new. (So is a file whose ctime moved for another
reason, e.g. a hard link made by `"land": "hardlink"`: it is mapped again on the next tick,
which may read it, but its run keys are the same, so nothing runs twice.) Resetting the cursor in the UI rescans the
whole folder without re-running anything already requested. A file changed less than
`landing_settle_seconds` ago (still being written or copied) waits for a later tick. A file
that cannot be read is logged and skipped until it changes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from hedgegrid_assets.automation.landing import is_landing_file, map_file, source_layout
from hedgegrid_assets.automation.schedules import SOURCE_TAG, TRIGGER_TAG
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings

FILE_DROP_SENSOR = "landing_file_sensor"
FILE_TAG = "hedgegrid/landing_file"
# Files handled per tick at most (the rest wait for the next tick), to stay well inside
# the sensor's evaluation timeout when many files land at once.
MAX_FILES_PER_TICK = 200


@dataclass(frozen=True, order=True)
class LandedFile:
    changed_ns: int  # max(mtime, ctime): when it last appeared or changed here
    path: Path
    size: int
    mtime_ns: int  # the content's version, with size (the run key)

    @property
    def fingerprint(self) -> str:
        return f"{self.path}:{self.mtime_ns}:{self.size}"

    def run_key(self, partition: str) -> str:
        return f"{self.fingerprint}:{partition}"


@dataclass(frozen=True)
class Cursor:
    """The newest change time handled, and the fingerprints of the files that carry exactly it."""

    changed_ns: int = -1
    seen: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            # "mtime_ns": a cursor written before change times (it still bounds what was handled).
            return cls(int(data.get("changed_ns", data.get("mtime_ns"))), frozenset(data.get("seen", [])))
        except (ValueError, KeyError, TypeError):
            return cls()  # unreadable cursor: rescan; run keys still prevent duplicates

    def dump(self) -> str:
        return json.dumps({"changed_ns": self.changed_ns, "seen": sorted(self.seen)})

    def is_new(self, f: LandedFile) -> bool:
        return f.changed_ns > self.changed_ns or (f.changed_ns == self.changed_ns and f.fingerprint not in self.seen)

    def advance(self, f: LandedFile) -> Cursor:
        if f.changed_ns > self.changed_ns:
            return Cursor(f.changed_ns, frozenset([f.fingerprint]))
        return Cursor(self.changed_ns, self.seen | {f.fingerprint})


def landing_folder(settings: Settings) -> Path | None:
    """The folder the sensor watches: `landing_dir`, else the csv/jsonl source's base_path."""
    if settings.landing_dir is not None:
        return Path(settings.landing_dir)
    return source_layout(settings).base_path


def list_landed(folder: Path) -> list[LandedFile]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(root, name)
            if not is_landing_file(path):
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # moved away while listing
                continue
            files.append(LandedFile(max(st.st_mtime_ns, st.st_ctime_ns), path.resolve(), st.st_size, st.st_mtime_ns))
    return sorted(files)


def build_file_drop_sensor(settings: Settings, job: UnresolvedAssetJobDefinition):
    folder = landing_folder(settings)

    @sensor(
        name=FILE_DROP_SENSOR,
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING if settings.automation_running else DefaultSensorStatus.STOPPED,
        description=(
            f"Watches {folder or '(no landing folder configured: set landing_dir)'} for new CSV/JSONL files "
            "and builds the date|symbol partitions each one feeds (once per file version)."
        ),
    )
    def landing_file_sensor(context: SensorEvaluationContext):
        if folder is None:
            return SkipReason(
                "No landing folder: set `landing_dir` (HEDGEGRID_LANDING_DIR) or a csv/jsonl source config."
            )
        if not folder.is_dir():
            return SkipReason(f"Landing folder {folder} does not exist (yet).")

        cursor = Cursor.parse(context.cursor)
        settled_before = time.time_ns() - int(settings.landing_settle_seconds * 1e9)
        today = dt.datetime.now(dt.UTC).date()
        layout = source_layout(settings)
        new = [f for f in list_landed(folder) if cursor.is_new(f)]
        # By change time, so the cursor never passes a file that is still waiting.
        waiting = [f for f in new if f.changed_ns > settled_before]
        todo = [f for f in new if f.changed_ns <= settled_before][:MAX_FILES_PER_TICK]

        requests, notes = [], []
        for f in todo:
            cursor = cursor.advance(f)
            try:
                mapping = map_file(f.path, folder, settings, layout, today)
            except Exception as err:
                notes.append(f"{f.path.name}: cannot read it ({type(err).__name__}: {err}); skipped until it changes")
                context.log.warning(notes[-1])
                continue
            for reason in mapping.skipped:
                notes.append(f"{f.path.name}: {reason}")
                context.log.info(notes[-1])
            keys = [str(partition_key(day, symbol)) for day, symbol in mapping.pairs]
            if keys:
                context.log.info(f"{f.path.name} -> {', '.join(keys)} ({mapping.how})")
            requests += [
                RunRequest(
                    run_key=f.run_key(key),
                    partition_key=key,
                    tags={TRIGGER_TAG: "file-drop", SOURCE_TAG: settings.source, FILE_TAG: f.path.name[-200:]},
                )
                for key in keys
            ]

        if waiting:
            context.log.info(f"{len(waiting)} file(s) still being written; next tick")
        if requests:
            return SensorResult(run_requests=requests, cursor=cursor.dump())
        summary = "; ".join(notes[:5]) or (f"{len(waiting)} file(s) still being written" if waiting else "No new files")
        return SensorResult(skip_reason=SkipReason(summary), cursor=cursor.dump())

    return landing_file_sensor

"""Progress of long work, for the command line: which step a partition's run is in, how far a
download has got, and (in `hedgegrid build`) bars with elapsed time and ETA.

Two halves:

- Reporting, in the process that runs a partition (the CLI itself with `--jobs 1`, a worker
  process otherwise): `step()` and `transfer()` hand an `Event` to the sink the caller
  installed with `reporting_to()`; without a sink they return at once, so the download loop
  and the asset code pay nothing when nobody listens (Dagster's UI, the daemon, tests).
  Step starts come from Dagster's own events through `progress_logger`, a Dagster logger the
  CLI adds to its build job; download bytes from `landing/download.py`'s chunk loop.
- Showing, in the CLI: `Display` draws rich bars (one over the partitions, one per partition
  running with its current stage, one per file downloading, in bytes) when stdout is a
  terminal, and prints only the plain per-partition lines otherwise (pipes, CI logs, tests)
  or with `--no-progress`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import logger


@dataclass(frozen=True)
class Event:
    kind: str  # "step": a step of the run started; "bytes": a download advanced
    label: str  # the step key, or what is being downloaded
    done: int = 0  # bytes so far
    total: int | None = None  # bytes expected (None: the server did not say)


_sink: Callable[[Event], None] | None = None


@contextmanager
def reporting_to(sink: Callable[[Event], None]) -> Iterator[None]:
    """Send this process's progress events to `sink` for the duration (one listener at a time)."""
    global _sink
    before, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = before


def step(step_key: str) -> None:
    if _sink is not None:
        _sink(Event("step", step_key))


def transfer(what: str, done: int, total: int | None) -> None:
    """A download of `what` has `done` of `total` bytes (called per chunk: cheap without a sink)."""
    if _sink is not None:
        _sink(Event("bytes", what, done, total))


class _StepStarts(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        if event is not None and event.event_type_value == "STEP_START" and event.step_key:
            step(event.step_key)


@logger(description="Hands each step start to hedgegrid's progress sink (the CLI's bars); logs nothing")
def progress_logger(_init_context) -> logging.Logger:
    log = logging.Logger("hedgegrid_progress", level=logging.DEBUG)
    log.addHandler(_StepStarts())
    return log


PROGRESS_LOGGER = "hedgegrid_progress"


def stage_label(step_key: str) -> str:
    """What a step of the build job does, as the partition's bar says it."""
    if step_key == "raw_market_data":
        return "source read (landing raw files)"
    if step_key == "catalog_commit":
        return "commit to the catalog"
    if step_key == "instrument_catalog":
        return "instrument"
    if step_key == "catalog_report":
        return "report (read back)"
    return f"read + validate {step_key}"


class Throttle:
    """Pass on step events, the first and last bytes event of a file, and at most `per_s`
    bytes events a second in between (a worker's queue to the CLI stays light)."""

    def __init__(self, forward: Callable[[Event], None], per_s: float = 10.0):
        self.forward, self.gap, self.last = forward, 1.0 / per_s, 0.0

    def __call__(self, ev: Event) -> None:
        now = time.monotonic()
        if ev.kind != "bytes" or ev.done == ev.total or now - self.last >= self.gap:
            self.last = now
            self.forward(ev)


class Display:
    """What `hedgegrid build` shows while it works: bars when `bars` (stdout a terminal and no
    --no-progress), else nothing but the lines it is given."""

    def __init__(self, partitions: int, steps: int, bars: bool):
        self.steps, self.bars = steps, bars
        self._running: dict[str, object] = {}  # partition -> its task
        self._started: dict[str, int] = {}  # partition -> steps started
        self._downloads: dict[tuple[str, str], object] = {}  # (partition, file) -> its task
        self._done: set[str] = set()  # late events of a finished partition (a worker's queue) are dropped
        if not bars:
            return
        from rich.console import Console
        from rich.progress import Progress

        # A copy of the terminal's descriptor: Dagster's compute-log capture points fd 1 at a file
        # while each step of an in-process run executes, and the bars must not go there.
        self._tty = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8")
        self.progress = Progress(*_columns(), console=Console(file=self._tty), refresh_per_second=5,
                                 redirect_stdout=False, redirect_stderr=False)  # fmt: skip
        self.overall = self.progress.add_task("partitions", total=partitions, unit="partitions")

    def __enter__(self) -> Display:
        if self.bars:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bars:
            for task in [*self._running.values(), *self._downloads.values()]:
                self.progress.remove_task(task)
            self.progress.stop()
            self._tty.close()

    def line(self, text: str) -> None:
        if self.bars:
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def started(self, key: str) -> None:
        if self.bars and key not in self._running and key not in self._done:
            self._running[key] = self.progress.add_task(f"  {key}  starting", total=self.steps, unit="steps")
            self._started[key] = 0

    def event(self, key: str, ev: Event) -> None:
        if not self.bars or key in self._done:
            return
        self.started(key)
        if ev.kind == "step":
            done = self._started[key]
            self._started[key] = done + 1
            # Drawn now, not at the next tick: a stage shorter than the refresh interval is shown too.
            self.progress.update(self._running[key], completed=done, description=f"  {key}  {stage_label(ev.label)}",
                                 refresh=True)  # fmt: skip
        elif ev.kind == "bytes":
            name = (key, ev.label)
            if name not in self._downloads:
                self._downloads[name] = self.progress.add_task(f"    download {ev.label}", total=ev.total, unit="bytes")
            self.progress.update(self._downloads[name], completed=ev.done, total=ev.total)
            if ev.total is not None and ev.done >= ev.total:
                self.progress.remove_task(self._downloads.pop(name))

    def finished(self, key: str) -> None:
        if not self.bars:
            return
        self._done.add(key)
        if key in self._running:
            self.progress.remove_task(self._running.pop(key))
        for name in [n for n in self._downloads if n[0] == key]:
            self.progress.remove_task(self._downloads.pop(name))
        self.progress.advance(self.overall)


def _columns() -> list:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class Amount(ProgressColumn):
        """`3/60 partitions`, `2/9 steps`, or `12.3/85.0 MB 40.1 MB/s` for a download."""

        def __init__(self):
            super().__init__()
            self.count, self.size, self.speed = MofNCompleteColumn(), DownloadColumn(), TransferSpeedColumn()

        def render(self, task):
            unit = task.fields.get("unit", "")
            if unit == "bytes":
                return Text.assemble(self.size.render(task), " ", self.speed.render(task))
            return Text.assemble(self.count.render(task), f" {unit}")

    return [
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        Amount(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]

"""One Dagster instance per catalog, and one catalog per instance.

The Dagster UI shows what its instance recorded: if a build into another catalog were recorded
there (`hedgegrid build --data-dir other-data/` with the UI's DAGSTER_HOME), the UI would call a
partition materialized that its own catalog does not hold. So the first build binds the two:
the catalog names its instance (`<catalog>/.hedgegrid-instance.json`) and the instance names its
catalog (`<DAGSTER_HOME>/hedgegrid-catalog.json`). Every later build, from the CLI or the UI,
must match both, or is refused before anything is written, with the setting that fixes it.
A build without an instance (no DAGSTER_HOME: an ephemeral one) may write an unbound catalog,
which no UI describes, but not one an instance describes.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

CATALOG_MARKER = ".hedgegrid-instance.json"
HOME_MARKER = "hedgegrid-catalog.json"


class InstanceMismatch(Exception):
    pass


def _read(path: Path, field: str) -> Path | None:
    try:
        value = json.loads(path.read_text()).get(field)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise InstanceMismatch(f"{path}: unreadable ({err}); delete it to bind again") from None
    return Path(value) if value else None


def _write(path: Path, field: str, value: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")  # unique: concurrent builds
    try:
        tmp.write_text(json.dumps({field: str(value)}) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def bound_instance(catalog: Path) -> Path | None:
    """The DAGSTER_HOME whose instance describes `catalog`, if one does."""
    return _read(Path(catalog) / CATALOG_MARKER, "dagster_home")


def bind(catalog: Path | str, home: Path | str | None) -> None:
    """Check (and on first use record) that `home`'s instance describes `catalog`.
    `home` None: a run without a persistent instance."""
    catalog = Path(catalog).resolve()
    bound = bound_instance(catalog)
    if home is None:
        if bound is not None:
            raise InstanceMismatch(
                f"the catalog {catalog} is described by the Dagster instance at {bound}, whose UI must see every "
                f"build into it; set DAGSTER_HOME={bound}"
            )
        return
    home = Path(home).resolve()
    described = _read(home / HOME_MARKER, "catalog")
    if bound is not None and bound != home:
        raise InstanceMismatch(
            f"the catalog {catalog} is described by the Dagster instance at {bound}, not this run's ({home}): "
            f"set DAGSTER_HOME={bound} to build into it (its UI: DAGSTER_HOME={bound} make ui); if this catalog is "
            f"a copy, delete its {CATALOG_MARKER} to bind it to this instance"
        )
    if described is not None and described != catalog:
        raise InstanceMismatch(
            f"the Dagster instance at {home} describes the catalog {described}, so it cannot also record builds "
            f"into {catalog}: give that catalog its own instance, e.g. DAGSTER_HOME={catalog.parent / 'dagster_home'}"
        )
    try:
        if described is None:
            _write(home / HOME_MARKER, "catalog", catalog)
        if bound is None:
            _write(catalog / CATALOG_MARKER, "dagster_home", home)
    except OSError:  # a read-only or full disk: the build itself says so, naming the path
        pass

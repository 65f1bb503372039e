"""What every `hedgegrid` subcommand shares: the usage error, dates, and the zones a command reads."""

from __future__ import annotations

import argparse
import datetime as dt


class UsageError(Exception):
    """A mistake in what the user asked: printed as one line, exit status 2."""


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def zones(data_dir: str | None, catalog: str | None):
    from pathlib import Path

    from hedgegrid_assets.settings import Settings
    from hedgegrid_assets.storage import is_object_uri

    settings = Settings(**({"data_dir": data_dir} if data_dir else {}))  # a folder or s3://
    if catalog and is_object_uri(catalog):
        return catalog, settings.model_copy(update={"catalog_dir": catalog})
    return (Path(catalog) if catalog else settings.catalog_path), settings

"""Validation of frames, reported as Dagster asset checks."""

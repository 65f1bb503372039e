"""Tardis.dev formats: CSV datasets and their order-book files."""

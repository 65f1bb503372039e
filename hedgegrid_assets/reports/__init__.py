"""Pictures for people: a partition's day (catalog_report) and the catalog's coverage (status)."""

"""Sources: each lands a date|symbol's raw files and parses them into canonical frames."""

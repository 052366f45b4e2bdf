"""Data-quality signals over plain arrays and pixels (no store, no files)."""

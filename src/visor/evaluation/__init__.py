"""Detection evaluation over plain arrays (no store, no files)."""

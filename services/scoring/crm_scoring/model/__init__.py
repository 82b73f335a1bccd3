"""Pure scoring math: no database, no I/O."""

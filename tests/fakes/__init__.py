"""In-memory twins of the services' ports, for fast unit tests (no I/O)."""

"""PostgreSQL: typed wrappers per external binary and the use cases built on them."""

"""seawall: automated backup and disaster recovery for PostgreSQL and Qdrant."""

__version__ = "0.1.0"

"""Physical base backups (pg_basebackup), their verification, and PITR."""

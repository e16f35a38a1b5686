"""The application layer: use cases above the engines (post-backup verify + prune, prune, demo, sync)."""

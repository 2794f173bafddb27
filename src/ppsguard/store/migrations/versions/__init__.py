"""The store's schema revisions, oldest first: 0001 initial, 0002 run digests and indexes."""

"""Test support shipped with the package: the network lab and its pytest fixtures."""

"""Shared test configuration: the lab's fixtures and marker handling come from the package."""

pytest_plugins = ["ppsguard.testing.pytest_plugin", "pytester"]

"""Test support shipped with the package: pytest fixtures over the lab (`ppsguard.lab`) and
certificate builders. Imported by tests only, never by the command line."""

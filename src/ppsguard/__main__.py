"""`python -m ppsguard` runs the `pps` command."""

from ppsguard.cli.app import run

run()

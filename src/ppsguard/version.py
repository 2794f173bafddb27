"""The version of ppsguard, in a module of its own: pure modules (the nmap XML and grepable
writers) name it without importing the library's front door (`ppsguard/__init__.py`)."""

__version__ = "0.1.0"

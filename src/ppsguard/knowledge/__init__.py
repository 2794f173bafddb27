"""The facts about ports every command prints: IANA ranges, service names and the risk catalog.

Pure: values in, values out. Data lives in `data/*.toml`, written for ppsguard from IANA's service
name and port number registry (CC0) and common practice. The only run-time reads are this host's
ephemeral range (/proc) and /etc/services (merged in at run time, never copied: it is GPL-2).
This package must not import socket, subprocess or asyncio (a test checks it).
"""

from __future__ import annotations

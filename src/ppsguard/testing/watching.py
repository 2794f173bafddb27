"""Whether a `pps watch` started in a lab host has opened its sources, read from the kernel:
it loads its nft tracking table, opens the conntrack socket, then binds NFLOG group 5 and sets
its flush timeout to 1 (the last step, shown in the namespace's nfnetlink_log). Lab tests wait
for this before making traffic the watch must see.

    assert wait_for(lambda: watch_sources_open(host), 15)
"""

from __future__ import annotations

from ppsguard.lab.hosts import Host


def nflog_bound(host: Host, group: int = 5) -> bool:
    """Whether a reader has bound NFLOG `group` in `host` and asked for each record at once
    (its flush timeout is 1, not the kernel's default of 100)."""
    text = host.run(["cat", "/proc/net/netfilter/nfnetlink_log"], check=False).stdout
    for line in text.splitlines():  # group, peer port id, queue length, mode, range, timeout
        fields = line.split()
        if len(fields) >= 6 and fields[0] == str(group) and fields[5] == "1":
            return True
    return False


def watch_sources_open(host: Host) -> bool:
    """Whether `pps watch` in `host` has loaded its table and opened its sources."""
    return "ppsguard_watch" in host.run(["nft", "list", "tables"]).stdout and nflog_bound(host)

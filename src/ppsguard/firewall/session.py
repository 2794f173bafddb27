"""The anti-lockout guard: would a new policy cut the SSH session the operator works over?

`apply.apply_table` calls `lockout_check` before it changes anything, so library callers get the
guard too. The operator's session is found without trusting the environment (`sudo` removes
`$SSH_CONNECTION`): walk this process's ancestry (/proc/<pid>/stat) and look, in the socket
inventory of the namespace being changed, for an established TCP socket that an ancestor named
sshd / sshd-session / dropbear holds on a listening port (an accepted connection, not a forward).
Its remote end is the session's peer. When no ancestor holds one (tmux, screen, a console, or the
session lives in another namespace), every SSH session in that namespace is checked instead and
the message says it could not tell which one is the operator's; `$SSH_CONNECTION` is used only as
a last hint. When the owners of sockets cannot be read, the guard warns that it cannot tell.

`lockout_problem` is pure; `find_sessions` reads /proc and the inventory. Nothing here changes
the rule set.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ppsguard.digits import decimal
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.registry import Action, HostPolicy

SSH_SERVERS = frozenset({"sshd", "sshd-session", "dropbear"})


@dataclass(frozen=True, slots=True)
class SshSession:
    """One SSH connection as the server sees it."""

    client: IPAddress
    client_port: int
    server: IPAddress
    server_port: int


@dataclass(frozen=True, slots=True)
class SessionSearch:
    """What the search found: `own` sessions are the operator's (found in the ancestry)."""

    sessions: tuple[SshSession, ...]
    own: bool
    how: str  # "process ancestry" | "all SSH sessions" | "$SSH_CONNECTION" | "none"
    warning: str | None = None


def ssh_session(environ: Mapping[str, str] | None = None) -> SshSession | None:
    """Parse SSH_CONNECTION ("client_ip client_port server_ip server_port"); None if absent."""
    value = (environ if environ is not None else os.environ).get("SSH_CONNECTION", "")
    parts = value.split()
    if len(parts) != 4:
        return None
    try:
        return SshSession(
            client=ipaddress.ip_address(parts[0].split("%")[0]),
            client_port=int(parts[1]),
            server=ipaddress.ip_address(parts[2].split("%")[0]),
            server_port=int(parts[3]),
        )
    except ValueError:
        return None


def ancestry(pid: int | None = None, proc: Path = Path("/proc")) -> tuple[int, ...]:
    """This process and its ancestors, nearest first (read from /proc/<pid>/stat)."""
    chain: list[int] = []
    current = pid if pid is not None else os.getpid()
    while current > 0 and current not in chain:
        chain.append(current)
        try:
            stat = (proc / str(current) / "stat").read_text()
        except OSError:
            break
        # "pid (comm) state ppid ...": comm may hold spaces and ')'; split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        current = (decimal(fields[1]) if len(fields) > 1 else None) or 0
    return tuple(chain)


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def find_sessions(netns: str | None, environ: Mapping[str, str] | None = None) -> SessionSearch:
    """The SSH sessions the new rule set must not cut, in namespace `netns` (None: ours)."""
    from ppsguard.errors import PpsError
    from ppsguard.inventory import collect
    from ppsguard.model.sockets import SocketState

    try:
        inventory = collect(
            listening=True, active=True, protocols=(Protocol.TCP,), netns=netns, owners=True
        )
    except PpsError as exc:
        return SessionSearch((), False, "none", f"cannot tell which SSH session to keep: {exc}")
    listening = {r.local_port for r in inventory.records if r.state is SocketState.LISTEN}
    ancestors = set(ancestry())
    own: list[SshSession] = []
    every: list[SshSession] = []
    unreadable = 0
    for record in inventory.records:
        if record.state is not SocketState.ESTABLISHED or record.local_port not in listening:
            continue
        if not record.owners:
            unreadable += 0 if record.kernel_owned else 1
            continue
        servers = [o for o in record.owners if o.comm in SSH_SERVERS]
        if not servers:
            continue
        session = SshSession(
            client=_unmapped(record.remote_address),
            client_port=record.remote_port,
            server=_unmapped(record.local_address),
            server_port=record.local_port,
        )
        every.append(session)
        if any(o.pid in ancestors for o in servers):
            own.append(session)
    if own:
        return SessionSearch(tuple(own), True, "process ancestry")
    warning = None
    if unreadable:
        warning = (
            f"cannot tell which SSH session this command runs over: the owners of {unreadable} "
            "connections could not be read"
        )
    hinted = ssh_session(environ)
    if every:
        return SessionSearch(tuple(every), False, "all SSH sessions", warning)
    if hinted is not None:
        return SessionSearch((hinted,), True, "$SSH_CONNECTION", warning)
    return SessionSearch((), False, "none", warning)


def lockout_problem(policy: HostPolicy, search: SessionSearch) -> str | None:
    """Why `policy` would cut the sessions found (None when it would cut none). Pure."""
    from ppsguard.policy.evaluate import evaluate

    cut: list[str] = []
    for session in search.sessions:
        decision = evaluate(
            policy, session.client, session.server_port, Protocol.TCP, session.server
        )
        if decision.action is Action.ALLOW:
            continue
        by = decision.rule.entry_id if decision.rule else f"{policy.host}/default"
        cut.append(
            f"{decision.action} the SSH connection from {session.client} to port "
            f"{session.server_port}/tcp (decided by {by})"
        )
    if not cut:
        return None
    listed = "; ".join(cut[:3]) + (f"; and {len(cut) - 3} more" if len(cut) > 3 else "")
    subject = "your SSH session" if search.own else "SSH sessions (this command's own is unknown)"
    return (
        f"the new rule set would cut {subject} ({search.how}): would {listed}; add an entry "
        "allowing it, or use --force"
    )

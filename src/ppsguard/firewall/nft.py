"""Thin subprocess seam to `nft`, `iptables-restore` and `ip6tables-restore`, optionally in a netns.

Everything that runs a firewall tool goes through `run_tool`, which maps the tool's failures to
ppsguard errors carrying the tool's own message (nft names the line and column it rejected).
This module does no parsing; see `live.py` for reading what `nft -j list ruleset` prints.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from ppsguard.errors import InputError, KernelFeatureMissing, PermissionDenied, RuntimeFailure

DEFAULT_TIMEOUT = 60.0
_MAX_MESSAGE = 2000


class RulesetRejected(InputError):
    """The kernel or the tool refused a rule set; the message is the tool's own."""


@dataclass(frozen=True, slots=True)
class Runner:
    """Runs firewall tools in the root namespace or, with `netns`, via `ip netns exec`."""

    netns: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def argv(self, tool_argv: list[str]) -> list[str]:
        if self.netns:
            return ["ip", "netns", "exec", self.netns, *tool_argv]
        return tool_argv

    def run(self, tool_argv: list[str], stdin: str | None = None) -> str:
        """Run a tool, return its stdout; raise a PpsError with its stderr on failure."""
        tool = tool_argv[0]
        if shutil.which(tool) is None:
            raise KernelFeatureMissing(f"{tool} not found on PATH (install the Debian package)")
        if self.netns and shutil.which("ip") is None:
            raise KernelFeatureMissing("ip (iproute2) not found on PATH, needed for --netns")
        try:
            done = subprocess.run(
                self.argv(tool_argv),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                # Its own session: a Ctrl-C or hang-up aimed at our terminal's process group
                # must not kill `nft -f` half-way through the apply's critical section.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeFailure(f"{tool} did not finish within {self.timeout:.0f} s") from exc
        except OSError as exc:
            raise RuntimeFailure(f"cannot run {tool}: {exc}") from exc
        if done.returncode != 0:
            message = (done.stderr or done.stdout or "").strip()[:_MAX_MESSAGE]
            lowered = message.lower()
            if "operation not permitted" in lowered or "permission denied" in lowered:
                raise PermissionDenied(f"{tool} needs root (CAP_NET_ADMIN): {message}")
            if self.netns and "cannot open network namespace" in lowered:
                raise RuntimeFailure(f"no network namespace {self.netns!r}: {message}")
            raise RulesetRejected(f"{tool} rejected the input: {message}", token=None)
        return done.stdout

    # nft -------------------------------------------------------------------------------
    def nft_list_json(self) -> str:
        return self.run(["nft", "-j", "list", "ruleset"])

    def nft_list_text(self) -> str:
        return self.run(["nft", "list", "ruleset"])

    def nft_check(self, text: str) -> None:
        """`nft -c -f -`: parse and validate in the kernel without committing."""
        self.run(["nft", "-c", "-f", "-"], stdin=text)

    def nft_apply(self, text: str) -> None:
        """`nft -f -`: one transaction; on error nothing changes."""
        self.run(["nft", "-f", "-"], stdin=text)

    # iptables ------------------------------------------------------------------------------
    def iptables_restore(self, text: str, *, ipv6: bool, test: bool) -> None:
        tool = "ip6tables-restore" if ipv6 else "iptables-restore"
        self.run([tool, "--test"] if test else [tool], stdin=text)

    def legacy_rules(self, ipv6: bool = False) -> str | None:
        """Rules held by iptables-legacy (invisible to nft), or None when the tool is absent."""
        tool = "ip6tables-legacy-save" if ipv6 else "iptables-legacy-save"
        if shutil.which(tool) is None:
            return None
        try:
            return self.run([tool])
        except RuntimeFailure:
            return None
        except InputError:
            return None

"""The anti-lockout guard finds the operator's real SSH session, with no help from the environment.

A real OpenSSH server runs in the firewall host (port 2222, a throwaway host key and client
key); the client host logs in over the lab network and runs `pps policy apply` with
`$SSH_CONNECTION` removed (as `sudo` does). The guard walks the process ancestry to the sshd
process holding the accepted connection and refuses a registry that would cut it, naming the
client's address; with an entry that allows 2222 the apply goes ahead and the session lives on.
For both targets, nftables and iptables.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ppsguard.lab.hosts import Host

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
PORT = 2222


def _sshd(fw: Host, folder: Path) -> Path:
    """Start sshd in `fw`; return the client's private key."""
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True
        )
    (folder / "authorized_keys").write_text((folder / "client.pub").read_text())
    config = folder / "sshd_config"
    config.write_text(
        f"Port {PORT}\nListenAddress {fw.ipv4}\nHostKey {folder / 'host'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    fw.popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if f":{PORT}" in fw.run(["ss", "-ltn"]).stdout:
            return folder / "client"
        time.sleep(0.1)
    raise AssertionError("sshd did not start")


def _over_ssh(client: Host, fw: Host, key: Path, command: str) -> subprocess.CompletedProcess[str]:
    return client.run(
        [
            "ssh",
            "-i",
            str(key),
            "-p",
            str(PORT),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            f"root@{fw.ipv4}",
            command,
        ],
        check=False,
        timeout=120,
    )


@pytest.mark.skipif(
    shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists(), reason="no sshd"
)
@pytest.mark.parametrize("target", ["nftables", "iptables"])
def test_guard_finds_the_session_without_ssh_connection(
    lab_factory, tmp_path: Path, target
) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["fw", "client"])
    fw, client = lab["fw"], lab["client"]
    key = _sshd(fw, tmp_path)
    state = tmp_path / "state"
    apply = (
        f"env -u SSH_CONNECTION -u SSH_CLIENT PPSGUARD_STATE_DIR={state} {sys.executable} -m "
        f"ppsguard policy apply {{registry}} --netns {fw.netns} --confirm-within 0 "
        f"--target {target}"
    )

    def loaded() -> bool:
        if target == "nftables":
            return "table inet ppsguard" in fw.run(["nft", "list", "ruleset"]).stdout
        return "-j PPSGUARD-INPUT" in fw.run(["iptables-save"]).stdout

    refused = _over_ssh(client, fw, key, apply.format(registry=SEED))
    assert refused.returncode == 2, refused.stderr
    assert "refusing to apply" in refused.stderr
    assert "your SSH session (process ancestry)" in refused.stderr
    assert f"from {client.ipv4} to port {PORT}/tcp" in refused.stderr
    assert not loaded()

    allowed = tmp_path / "with-ssh.yaml"
    allowed.write_text(
        SEED.read_text().replace(
            "    provides:\n",
            f"    provides:\n      - id: admin-ssh\n        port: {PORT}/tcp\n"
            "        from: anywhere\n",
        )
    )
    done = _over_ssh(client, fw, key, apply.format(registry=allowed))
    assert done.returncode == 0, done.stderr
    assert loaded()
    again = _over_ssh(client, fw, key, "echo still-here")  # a new session gets in too
    assert again.stdout.strip() == "still-here"

"""The I/O edge of the importers: read the given files, or ask the running tools (`--live`,
optionally inside `--netns NS`), and say how to load the original into a lab host for --verify.

Files are read with the project's bounded reader (16 MiB each); a file is recognised by its
content (`ipset save` lines, `DEFAULT_INPUT_POLICY=`, XML, JSON), so the order of FILEs does
not matter. Live reads run the tools with a 30 s deadline each; a tool that is missing or
fails is a runtime failure (exit 3) naming it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ppsguard.errors import RuntimeFailure, UsageError
from ppsguard.importers.verify import Step
from ppsguard.infile import read_text
from ppsguard.lab.hosts import Host

LIMIT = 16 << 20
SOURCES = ("ufw", "firewalld", "iptables", "nftables")


FIREWALLD_SERVICES = (Path("/usr/lib/firewalld/services"), Path("/etc/firewalld/services"))


def read_inputs(paths: Sequence[Path]) -> list[tuple[str, str]]:
    return [(str(path), read_text(path, limit=LIMIT, what="rule file")) for path in paths]


def firewalld_services(given: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """firewalld's own service definitions (later folders win), for names not given as files."""
    have = {Path(name).name for name, _ in given}
    found: dict[str, Path] = {}
    for folder in FIREWALLD_SERVICES:
        if folder.is_dir():
            found.update({p.name: p for p in sorted(folder.glob("*.xml")) if p.name not in have})
    return read_inputs(list(found.values()))


def _run(argv: list[str], netns: str | None, *, check: bool = True) -> str:
    command = ["ip", "netns", "exec", netns, *argv] if netns else argv
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise RuntimeFailure(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"{' '.join(argv)} did not answer in 30 s") from None
    if check and result.returncode != 0:
        raise RuntimeFailure(
            f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[:300]}"
        )
    return result.stdout


def live_inputs(source: str, netns: str | None) -> list[tuple[str, str]]:
    """What the running tools say, as (name, text) pairs like files."""
    if source == "nftables":
        return [("nft -j list ruleset", _run(["nft", "-j", "list", "ruleset"], netns))]
    if source == "iptables":
        out = [("iptables-save", _run(["iptables-save"], netns))]
        six = _run(["ip6tables-save"], netns, check=False)
        if six.strip():
            out.append(("ip6tables-save", six))
        sets = _run(["ipset", "save"], netns, check=False)
        if sets.strip():
            out.append(("ipset save", sets))
        return out
    if source == "ufw":
        paths = [
            Path("/etc/ufw/user.rules"),
            Path("/etc/ufw/user6.rules"),
            Path("/etc/default/ufw"),
            Path("/etc/ufw/ufw.conf"),
        ]
        return read_inputs([p for p in paths if p.exists()])
    if source == "firewalld":
        text = _run(["firewall-cmd", "--list-all-zones"], netns)
        out = [("firewall-cmd --list-all-zones", text)]
        default = _run(["firewall-cmd", "--get-default-zone"], netns, check=False).strip()
        if default:
            out.append(("firewall-cmd --get-default-zone", f"default-zone: {default}\n"))
        return out + firewalld_services(out)
    raise UsageError(f"unknown source {source!r}", hint="use " + ", ".join(SOURCES))


def original_loader(source: str, inputs: list[tuple[str, str]]) -> list[Step]:
    """How --verify loads the original into a lab host, or a UsageError saying it cannot."""
    from ppsguard.importers.nftables import loadable_json

    if source == "iptables":
        steps: list[Step] = []
        for _name, text in inputs:
            if text.lstrip().startswith(("create ", "add ")):
                steps.insert(0, (["ipset", "restore", "-exist"], text))
            elif "ip6tables" in text[:400]:
                steps.append((["ip6tables-restore"], text))
            else:
                steps.append((["iptables-restore"], text))
        return steps
    if source == "nftables":
        name, text = inputs[0]
        return [(["nft", "-j", "-f", "-"], json.dumps(loadable_json(text, name)))]
    if source == "ufw" and any("ufw-user-input" in text for _, text in inputs):
        return []  # see ufw_loader
    if source == "firewalld":
        return []  # see firewalld_loader
    raise UsageError(
        f"--verify loads {source} rules only through their own tool",
        hint="see docs/import.md: ufw and firewalld are verified by the lab tests",
    )


def ufw_loader(inputs: list[tuple[str, str]]) -> Callable[[Host], None]:
    """Real ufw, enabled inside the host with its files in a private mount namespace: a copy
    of /etc/ufw with the given user.rules/user6.rules, and the given /etc/default/ufw. Nothing
    on the machine's own /etc changes (the bind mounts exist only in that namespace)."""

    def load(host: Host) -> None:
        with tempfile.TemporaryDirectory(prefix="pps-ufw-") as folder:
            root = Path(folder)
            shutil.copytree("/etc/ufw", root / "ufw")
            shutil.copy("/etc/default/ufw", root / "default-ufw")
            for _name, text in inputs:
                if "ufw6-user-input" in text:
                    (root / "ufw" / "user6.rules").write_text(text)
                elif "ufw-user-input" in text:
                    (root / "ufw" / "user.rules").write_text(text)
                elif "DEFAULT_INPUT_POLICY" in text:
                    (root / "default-ufw").write_text(text)
            host.run([*UFW_PRIVATE, f"{UFW_MOUNTS.format(root=root)} && ufw --force enable"])

    return load


UFW_PRIVATE = ["unshare", "-m", "--propagation", "private", "sh", "-ec"]
UFW_MOUNTS = "mount --bind {root}/ufw /etc/ufw && mount --bind {root}/default-ufw /etc/default/ufw"


FIREWALLD_PRIVATE = """mount --bind {root}/etc /etc/firewalld
mount --bind {root}/run-dbus /run/dbus
mkdir -p /run/firewalld && mount --bind {root}/run-firewalld /run/firewalld
dbus-daemon --system --fork --nopidfile
exec firewalld --nofork --nopid
"""


def _settled(host: Host, deadline: float) -> None:
    """Wait until firewalld has finished filling its table: the same ruleset read three times,
    half a second apart (it fills the zone's chains in several batches after creating them; a
    fixed second was not always enough on a loaded machine)."""
    previous, same = "", 0
    while time.monotonic() < deadline and same < 2:
        time.sleep(0.5)
        now = host.run(["nft", "list", "table", "inet", "firewalld"], check=False).stdout
        same = same + 1 if now == previous else 0
        previous = now


def firewalld_loader(
    inputs: list[tuple[str, str]], zone: str | None, folder: Path
) -> Callable[[Host], None]:
    """Real firewalld started inside the host, with a private D-Bus system bus and a copy of
    /etc/firewalld holding the given zone, service and ipset XML, in a private mount namespace.
    `folder` must outlive the probes; the lab stops the daemon (and its bus) at teardown."""
    from ppsguard.importers.firewalld import root_tag

    etc = folder / "etc"
    shutil.copytree("/etc/firewalld", etc)
    for name in ("run-dbus", "run-firewalld"):
        (folder / name).mkdir()
    zones = []
    for name, text in inputs:
        if any(Path(name).parent == own for own in FIREWALLD_SERVICES):
            continue  # firewalld's own definitions: already where it looks
        tag = root_tag(text, name)
        if tag is None:
            raise UsageError(
                "--verify loads firewalld zones from XML, not from --list-all-zones text",
                token=name,
            )
        sub = {"zone": "zones", "service": "services", "ipset": "ipsets"}[tag]
        (etc / sub).mkdir(exist_ok=True)
        (etc / sub / Path(name).name).write_text(text)
        if tag == "zone":
            zones.append(Path(name).stem)
    default = zone or ("public" if "public" in zones or not zones else zones[0])
    conf = etc / "firewalld.conf"
    lines = conf.read_text().splitlines() if conf.exists() else []
    lines = [line for line in lines if not line.startswith("DefaultZone=")]
    conf.write_text("\n".join([*lines, f"DefaultZone={default}", ""]))

    def load(host: Host) -> None:
        script = FIREWALLD_PRIVATE.format(root=folder)
        process = host.popen(["unshare", "-m", "--propagation", "private", "sh", "-ec", script])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = host.run(["nft", "list", "chain", "inet", "firewalld", f"filter_IN_{default}"],
                             check=False)  # fmt: skip
            if found.returncode == 0:
                _settled(host, deadline)
                return
            if process.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeFailure("firewalld did not start in the lab host (needs dbus-daemon)")

    return load

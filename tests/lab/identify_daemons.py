"""Start real Debian daemons inside a lab host for the service identification tests and benchmark.

Each daemon runs in the foreground in the host's namespace with its own temporary configuration,
bound to the host's lab address on the port asked for. The versions we expect are read from the
installed packages (dpkg), never written down here.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from identify_daemons_more import (
    MORE_DAEMONS,
    MORE_EXECUTABLES,
    MORE_HOSTS,
    MORE_LAUNCHERS,
    MORE_NO_VERSION,
    MORE_STANDARD_PORTS,
)

from ppsguard.lab.hosts import Host, Lab

# daemon -> (Debian package, service name, product as our signatures name it, protocols)
DAEMONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "nginx": ("nginx", "http", "nginx", ("tcp",)),
    "sshd": ("openssh-server", "ssh", "OpenSSH", ("tcp",)),
    "redis": ("redis-server", "redis", "Redis key-value store", ("tcp",)),
    "memcached": ("memcached", "memcached", "Memcached", ("tcp",)),
    "vsftpd": ("vsftpd", "ftp", "vsftpd", ("tcp",)),
    "dnsmasq": ("dnsmasq-base", "dns", "dnsmasq", ("udp", "tcp")),
    "rsyncd": ("rsync", "rsync", "rsync daemon", ("tcp",)),
    "mosquitto": ("mosquitto", "mqtt", "Mosquitto", ("tcp",)),
    "tinyproxy": ("tinyproxy", "http-proxy", "Tinyproxy", ("tcp",)),
    "tinyproxy-front": ("tinyproxy", "http-proxy", "Tinyproxy", ("tcp",)),
    "snmpd": ("snmpd", "snmp", "Net-SNMP", ("udp",)),
    "lighttpd": ("lighttpd", "http", "lighttpd", ("tcp",)),
    "nginx-tls": ("nginx", "https", "nginx", ("tcp",)),  # HTTPS (self-signed certificate)
    "opensmtpd": ("opensmtpd", "smtp", "OpenSMTPD", ("tcp",)),
    "dovecot-imap": ("dovecot-imapd", "imap", "Dovecot imapd", ("tcp",)),
    "dovecot-pop3": ("dovecot-pop3d", "pop3", "Dovecot pop3d", ("tcp",)),
    "dovecot-imaps": ("dovecot-imapd", "imap", "Dovecot imapd", ("tcp",)),  # implicit TLS
    "unbound": ("unbound", "dns", "Unbound", ("udp", "tcp")),
    "slapd": ("slapd", "ldap", "OpenLDAP", ("tcp",)),
}
# daemons whose answers carry no release number (rsync shows its protocol version, an SNMP
# agent asked without a community only its engine ID): the expected version is None
NO_VERSION = {
    "rsyncd", "snmpd", "opensmtpd", "dovecot-imap", "dovecot-pop3", "dovecot-imaps", "slapd",
}  # fmt: skip
STANDARD_PORTS = {
    "nginx": 80,
    "sshd": 22,
    "redis": 6379,
    "memcached": 11211,
    "vsftpd": 21,
    "dnsmasq": 53,
    "rsyncd": 873,
    "mosquitto": 1883,
    "tinyproxy": 3128,
    "snmpd": 161,
    "lighttpd": 8080,
    "opensmtpd": 25,
    "dovecot-imap": 143,
    "dovecot-pop3": 110,
    "dovecot-imaps": 993,
    "unbound": 53,
    "slapd": 389,
}
# second products of a protocol run on a second lab host, so both can hold the standard port
# (proftpd would be one, but its Debian package conflicts with vsftpd's)
SECOND_HOST = {"unbound"}
# the lab host each daemon runs on ("srv" unless named here)
HOSTS = {"unbound": "srv2", **MORE_HOSTS}
LAB_HOSTS = ["srv", "srv2", "srv3", "srv4", "scanner"]
EXECUTABLES = {
    "nginx": "/usr/sbin/nginx",
    "sshd": "/usr/sbin/sshd",
    "redis": "redis-server",
    "memcached": "memcached",
    "vsftpd": "/usr/sbin/vsftpd",
    "dnsmasq": "/usr/sbin/dnsmasq",
    "rsyncd": "/usr/bin/rsync",
    "mosquitto": "/usr/sbin/mosquitto",
    "tinyproxy": "/usr/bin/tinyproxy",
    "tinyproxy-front": "/usr/bin/tinyproxy",
    "snmpd": "/usr/sbin/snmpd",
    "lighttpd": "/usr/sbin/lighttpd",
    "nginx-tls": "/usr/sbin/nginx",
    "opensmtpd": "/usr/sbin/smtpd",
    "dovecot-imap": "/usr/sbin/dovecot",
    "dovecot-pop3": "/usr/sbin/dovecot",
    "dovecot-imaps": "/usr/sbin/dovecot",
    "unbound": "/usr/sbin/unbound",
    "slapd": "/usr/sbin/slapd",
}


@dataclass(frozen=True, slots=True)
class Expected:
    daemon: str
    port: int
    protocol: str
    service: str
    product: str
    version: str | None
    address: str = ""  # the lab host's address the daemon listens on


DAEMONS.update(MORE_DAEMONS)
NO_VERSION |= MORE_NO_VERSION
STANDARD_PORTS.update(MORE_STANDARD_PORTS)
EXECUTABLES.update(MORE_EXECUTABLES)


def missing_daemons() -> list[str]:
    return [d for d, exe in EXECUTABLES.items() if shutil.which(exe) is None]


def require_daemons() -> None:
    """Skip the calling test when a lab daemon is not installed — or fail it when
    PPSGUARD_REQUIRE_LAB=1, so CI never passes by skipping the daemons."""
    import pytest

    from ppsguard.testing.pytest_plugin import lab_required

    missing = missing_daemons()
    if not missing:
        return
    reason = f"daemons not installed: {missing} (make test installs them)"
    if lab_required():
        pytest.fail(f"PPSGUARD_REQUIRE_LAB=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def package_version(package: str) -> str:
    """Upstream version of an installed package: '1:9.2p1-2+deb12u3' -> '9.2p1'."""
    full = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    upstream = full.split(":", 1)[-1]
    upstream = upstream.rsplit("-", 1)[0] if "-" in upstream else upstream
    return upstream.split("+dfsg", 1)[0].split("+ds", 1)[0]  # Debian's repack suffixes


def _nginx(host: Host, port: int, work: Path) -> list[str]:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / sub).mkdir(exist_ok=True)
    config = work / "nginx.conf"
    config.write_text(
        f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  server {{ listen {host.ipv4}:{port}; location / {{ return 200 "lab\\n"; }} }}
}}
"""
    )
    return ["/usr/sbin/nginx", "-c", str(config), "-g", "daemon off;"]


def _self_signed(work: Path) -> tuple[Path, Path]:
    key, cert = work / "key.pem", work / "cert.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/CN=lab.test", "-days", "2",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    return cert, key


def _nginx_tls(host: Host, port: int, work: Path) -> list[str]:
    cert, key = _self_signed(work)
    argv = _nginx(host, port, work)
    config = work / "nginx.conf"
    config.write_text(
        config.read_text().replace(
            f"listen {host.ipv4}:{port};",
            f"listen {host.ipv4}:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};",
        )
    )
    return argv


def _sshd(host: Host, port: int, work: Path) -> list[str]:
    key = work / "ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
        )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    config = work / "sshd_config"
    config.write_text(f"HostKey {key}\nPidFile none\nUsePAM no\nListenAddress {host.ipv4}:{port}\n")
    return ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]


def _redis(host: Host, port: int, work: Path) -> list[str]:
    return [
        "redis-server", "--port", str(port), "--bind", str(host.ipv4),
        "--save", "", "--appendonly", "no",
        "--dir", str(work), "--protected-mode", "no", "--daemonize", "no",
    ]  # fmt: skip


def _memcached(host: Host, port: int, work: Path) -> list[str]:
    return ["memcached", "-u", "nobody", "-l", str(host.ipv4), "-p", str(port), "-U", "0"]


def _vsftpd(host: Host, port: int, work: Path) -> list[str]:
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    config = work / "vsftpd.conf"
    config.write_text(
        f"listen=YES\nlisten_ipv6=NO\nlisten_address={host.ipv4}\nlisten_port={port}\nbackground=NO\n"
        f"anonymous_enable=YES\nno_anon_password=YES\nanon_root={empty}\nftp_username=nobody\n"
        f"local_enable=NO\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\n"
    )
    return ["/usr/sbin/vsftpd", str(config)]


def _dnsmasq(host: Host, port: int, work: Path) -> list[str]:
    return [
        "/usr/sbin/dnsmasq", "-k", "--conf-file=/dev/null", "-p", str(port),
        f"--listen-address={host.ipv4}",
        "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
        "--user=root", "--group=root",
    ]  # fmt: skip


def _rsyncd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "rsyncd.conf"
    config.write_text(f"use chroot = no\npid file =\n[lab]\n  path = {work}\n  read only = yes\n")
    return [
        "/usr/bin/rsync", "--daemon", "--no-detach", f"--config={config}",
        f"--address={host.ipv4}", f"--port={port}",
    ]  # fmt: skip


def _mosquitto(host: Host, port: int, work: Path) -> list[str]:
    config = work / "mosquitto.conf"
    config.write_text(
        f"listener {port} {host.ipv4}\nallow_anonymous true\npersistence false\n"
        "log_dest none\nuser root\n"
    )
    return ["/usr/sbin/mosquitto", "-c", str(config)]


def _tinyproxy(host: Host, port: int, work: Path, reverse_to: str | None = None) -> list[str]:
    config = work / "tinyproxy.conf"
    reverse = f'ReversePath "/" "{reverse_to}"\nReverseOnly Yes\n' if reverse_to else ""
    config.write_text(
        f"Port {port}\nListen {host.ipv4}\nTimeout 5\nMaxClients 20\n"
        f'PidFile "{work}/tinyproxy.pid"\nLogFile "{work}/tinyproxy.log"\nLogLevel Critical\n'
        + reverse
    )
    return ["/usr/bin/tinyproxy", "-d", "-c", str(config)]


def _tinyproxy_front(host: Host, port: int, work: Path) -> list[str]:
    """Tinyproxy in front of the web server on the same host's port 80 (start nginx there)."""
    return _tinyproxy(host, port, work, reverse_to=f"http://{host.ipv4}:80/")


def _snmpd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "snmpd.conf"
    config.write_text(f"rocommunity public\npersistentDir {work}\n")
    return [
        "/usr/sbin/snmpd", "-f", "-Lf", "/dev/null", "-C", "-c", str(config),
        "-p", str(work / "snmpd.pid"), f"udp:{host.ipv4}:{port}",
    ]  # fmt: skip


def _lighttpd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "lighttpd.conf"
    config.write_text(
        f'server.document-root = "{work}"\nserver.port = {port}\n'
        f'server.bind = "{host.ipv4}"\nserver.errorlog = "{work}/error.log"\n'
    )
    (work / "index.html").write_text("<title>lab</title>\n")
    return ["/usr/sbin/lighttpd", "-D", "-f", str(config)]


def _opensmtpd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "smtpd.conf"
    config.write_text(
        f'listen on {host.ipv4} port {port}\naction "local" mbox\nmatch for local action "local"\n'
    )
    config.chmod(0o600)
    # smtpd's control socket has a fixed path under /run: each instance gets a private /run
    return [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        f"mount -t tmpfs lab-run /run && exec /usr/sbin/smtpd -d -f {config}",
    ]  # fmt: skip


def _dovecot(host: Host, port: int, work: Path, protocol: str, implicit: bool = False) -> list[str]:
    # dovecot's sockets live under base_dir, and a socket path must stay under 108 bytes: each
    # instance gets a private /run (a tmpfs that vanishes with it) instead of the long tmp path
    base = "/run/dovecot"
    secure = "imaps" if protocol == "imap" else "pop3s"
    cert, key = _self_signed(work)  # STARTTLS / STLS offered with a self-signed certificate
    config = work / "dovecot.conf"
    config.write_text(
        f"base_dir = {base}\ninstance_name = lab-{protocol}-{port}\nprotocols = {protocol}\n"
        f"listen = {host.ipv4}\nssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
        f"log_path = {work}/dovecot.log\n"
        f"passdb {{\n  driver = static\n  args = nopassword=y\n}}\n"
        f"userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={work}\n}}\n"
        f"service {protocol}-login {{\n  inet_listener {protocol} {{\n"
        f"    port = {0 if implicit else port}\n  }}\n"
        f"  inet_listener {secure} {{\n    port = {port if implicit else 0}\n"
        f"    ssl = yes\n  }}\n}}\n"
        "service anvil {\n  chroot =\n}\nservice stats {\n  chroot =\n}\n"
    )
    return [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        f"mount -t tmpfs lab-run /run && exec /usr/sbin/dovecot -F -c {config}",
    ]  # fmt: skip


def _dovecot_imap(host: Host, port: int, work: Path) -> list[str]:
    return _dovecot(host, port, work, "imap")


def _dovecot_pop3(host: Host, port: int, work: Path) -> list[str]:
    return _dovecot(host, port, work, "pop3")


def _dovecot_imaps(host: Host, port: int, work: Path) -> list[str]:
    return _dovecot(host, port, work, "imap", implicit=True)


def _slapd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "slapd.conf"
    config.write_text(
        f"include /etc/ldap/schema/core.schema\npidfile {work}/slapd.pid\n"
        f"argsfile {work}/slapd.args\n"
    )  # no database: the root DSE alone answers, as it does before any bind
    return ["/usr/sbin/slapd", "-d", "0", "-f", str(config), "-h", f"ldap://{host.ipv4}:{port}/"]


def _unbound(host: Host, port: int, work: Path) -> list[str]:
    config = work / "unbound.conf"
    config.write_text(
        f"server:\n  interface: {host.ipv4}\n  port: {port}\n  do-daemonize: no\n"
        f'  chroot: ""\n  username: ""\n  pidfile: ""\n  directory: "{work}"\n'
        '  use-syslog: no\n  logfile: ""\n  access-control: 0.0.0.0/0 allow\n'
        '  module-config: "iterator"\n  hide-version: no\n'
        "remote-control:\n  control-enable: no\n"
    )
    return ["/usr/sbin/unbound", "-d", "-c", str(config)]


LAUNCHERS = {
    "nginx": _nginx,
    "sshd": _sshd,
    "redis": _redis,
    "memcached": _memcached,
    "vsftpd": _vsftpd,
    "dnsmasq": _dnsmasq,
    "rsyncd": _rsyncd,
    "mosquitto": _mosquitto,
    "tinyproxy": _tinyproxy,
    "tinyproxy-front": _tinyproxy_front,
    "snmpd": _snmpd,
    "lighttpd": _lighttpd,
    "nginx-tls": _nginx_tls,
    "opensmtpd": _opensmtpd,
    "dovecot-imap": _dovecot_imap,
    "dovecot-pop3": _dovecot_pop3,
    "dovecot-imaps": _dovecot_imaps,
    "unbound": _unbound,
    "slapd": _slapd,
    **MORE_LAUNCHERS,
}


def wait_listening(host: Host, port: int, protocol: str = "tcp", timeout_s: float = 30.0) -> None:
    """Wait for a daemon's socket. 30 s, not 10: 34 daemons start at once on 2 cores, and one
    on srv4:80 took longer than 10 s in a fresh-clone CI run (a bound, not a timing claim)."""
    flag = "-Hltn" if protocol == "tcp" else "-Hlun"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        out = host.run(["ss", flag, f"sport = :{port}"], check=False, timeout=10).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{host.name}: nothing listening on {protocol}/{port} after {timeout_s} s")


def start(host: Host, daemon: str, port: int, work: Path) -> list[Expected]:
    """Start `daemon` on `host` at `port`; return what identification should find there."""
    folder = work / f"{daemon}-{port}"
    folder.mkdir(parents=True, exist_ok=True)
    host.popen(LAUNCHERS[daemon](host, port, folder))
    package, service, product, protocols = DAEMONS[daemon]
    version = None if daemon in NO_VERSION else package_version(package)
    for protocol in protocols:
        wait_listening(host, port, protocol)
    return [
        Expected(daemon, port, protocol, service, product, version, str(host.ipv4))
        for protocol in protocols
    ]


@contextlib.contextmanager
def work_dir() -> Iterator[Path]:
    """A folder for the daemons' files that the users they switch to (proxy, mysql, postgres,
    www-data) can reach (pytest's tmp folders are private to root); removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ppsguard-daemons-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def start_all(lab: Lab, placement: Mapping[str, int], work: Path) -> list[Expected]:
    """Start every daemon of `placement` (daemon -> port) on its lab host, in parallel."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        started = [
            pool.submit(start, lab[HOSTS.get(daemon, "srv")], daemon, port, work)
            for daemon, port in placement.items()
        ]
        return [item for future in started for item in future.result()]

"""More real Debian daemons for the service identification lab: web servers and proxies, DNS,
databases, brokers, monitoring agents, file sharing, remote access and VPN.

Same contract as `identify_daemons`: each launcher writes a private configuration under `work`
and returns the argv that runs the daemon in the foreground inside the lab host, bound to the
host's lab address and the port asked for. Daemons whose runtime paths are fixed (/run, /tmp)
get a private mount namespace with a tmpfs there, so two instances never share a lock or socket.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable
from pathlib import Path

from ppsguard.lab.hosts import Host
from ppsguard.testing.postgres import bin_dir

_PG_BIN = bin_dir() or Path("/usr/lib/postgresql/bin")  # the newest installed server

Launcher = Callable[[Host, int, Path], list[str]]
_NODE_EXPORTER = "Prometheus Node Exporter"

# daemon -> (Debian package, service name, product as our signatures name it, protocols)
MORE_DAEMONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "apache2": ("apache2", "http", "Apache httpd", ("tcp",)),
    "squid": ("squid", "http-proxy", "Squid", ("tcp",)),
    "haproxy": ("haproxy", "http-proxy", "HAProxy", ("tcp",)),
    "named": ("bind9", "dns", "ISC BIND", ("udp", "tcp")),
    "nsd": ("nsd", "dns", "NSD", ("udp", "tcp")),
    "telnetd": ("inetutils-telnetd", "telnet", "GNU Inetutils telnetd", ("tcp",)),
    "mariadb": ("mariadb-server", "mysql", "MariaDB", ("tcp",)),
    "postgresql": ("postgresql", "postgresql", "PostgreSQL DB", ("tcp",)),
    "node-exporter": ("prometheus-node-exporter", "prometheus", _NODE_EXPORTER, ("tcp",)),
    "zabbix-agent": ("zabbix-agent", "zabbix-agent", "Zabbix agent", ("tcp",)),
    "redis-sentinel": ("redis-sentinel", "redis", "Redis key-value store", ("tcp",)),
    "nats": ("nats-server", "nats", "NATS server", ("tcp",)),
    "influxdb": ("influxdb", "influxdb", "InfluxDB", ("tcp",)),
    "etcd": ("etcd-server", "etcd", "etcd", ("tcp",)),
    "smbd": ("samba", "smb", "Samba smbd", ("tcp",)),
    "openvpn": ("openvpn", "openvpn", "OpenVPN", ("udp",)),
    "vnc": ("tigervnc-standalone-server", "vnc", "VNC", ("tcp",)),
}
# what these daemons do not reveal before a login: no release number to expect
MORE_NO_VERSION = {"haproxy", "telnetd", "postgresql", "smbd", "openvpn", "vnc"}
MORE_STANDARD_PORTS = {
    "apache2": 80,
    "squid": 3128,
    "haproxy": 80,
    "named": 53,
    "nsd": 53,
    "telnetd": 23,
    "mariadb": 3306,
    "postgresql": 5432,
    "node-exporter": 9100,
    "zabbix-agent": 10050,
    "redis-sentinel": 26379,
    "nats": 4222,
    "influxdb": 8086,
    "etcd": 2379,
    "smbd": 445,
    "openvpn": 1194,
    "vnc": 5900,
}
MORE_UNUSUAL_PORTS = {
    "apache2": 8181,
    "squid": 13128,
    "haproxy": 18080,
    "named": 5300,
    "nsd": 5301,
    "telnetd": 2323,
    "mariadb": 13306,
    "postgresql": 15432,
    "node-exporter": 19100,
    "zabbix-agent": 20050,
    "redis-sentinel": 16379,
    "nats": 14222,
    "influxdb": 18086,
    "etcd": 12379,
    "smbd": 1445,
    "openvpn": 11194,
    "vnc": 15900,
}
# the lab host each runs on when another daemon of the protocol holds its standard port there
MORE_HOSTS = {"apache2": "srv3", "squid": "srv3", "named": "srv3", "haproxy": "srv4", "nsd": "srv4"}
MORE_EXECUTABLES = {
    "apache2": "/usr/sbin/apache2",
    "squid": "/usr/sbin/squid",
    "haproxy": "/usr/sbin/haproxy",
    "named": "/usr/sbin/named",
    "nsd": "/usr/sbin/nsd",
    "telnetd": "/usr/sbin/telnetd",
    "mariadb": "/usr/sbin/mariadbd",
    "postgresql": str(_PG_BIN / "postgres"),
    "node-exporter": "/usr/bin/prometheus-node-exporter",
    "zabbix-agent": "/usr/sbin/zabbix_agentd",
    "redis-sentinel": "/usr/bin/redis-sentinel",
    "nats": "/usr/sbin/nats-server",
    "influxdb": "/usr/bin/influxd",
    "etcd": "/usr/bin/etcd",
    "smbd": "/usr/sbin/smbd",
    "openvpn": "/usr/sbin/openvpn",
    "vnc": "/usr/bin/Xtigervnc",
}


def _private_run(command: str, *mounts: str) -> list[str]:
    """`command` in a private mount namespace with a fresh tmpfs on each of `mounts`."""
    setup = " && ".join(f"mount -t tmpfs lab-tmp {m}" for m in mounts)
    return [
        "unshare", "--mount", "--propagation", "private", "sh", "-c", f"{setup} && exec {command}",
    ]  # fmt: skip


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for folder, _, files in os.walk(path):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(Path(folder) / name, entry.pw_uid, entry.pw_gid)


def _apache2(host: Host, port: int, work: Path) -> list[str]:
    modules = "/usr/lib/apache2/modules"
    config = work / "apache2.conf"
    (work / "index.html").write_text("<title>lab</title>\n")
    config.write_text(
        f"LoadModule mpm_event_module {modules}/mod_mpm_event.so\n"
        f"LoadModule authz_core_module {modules}/mod_authz_core.so\n"
        f"Listen {host.ipv4}:{port}\nServerName lab.test\nUser www-data\nGroup www-data\n"
        f"PidFile {work}/apache2.pid\nDefaultRuntimeDir {work}\nMutex file:{work}\n"
        f"ErrorLog {work}/error.log\nDocumentRoot {work}\nServerLimit 1\nStartServers 1\n"
    )
    return ["/usr/sbin/apache2", "-f", str(config), "-DFOREGROUND"]


def _squid(host: Host, port: int, work: Path) -> list[str]:
    config = work / "squid.conf"
    config.write_text(
        f"http_port {host.ipv4}:{port}\nhttp_access allow all\ncache deny all\n"
        f"pid_filename {work}/squid.pid\ncache_log {work}/cache.log\naccess_log none\n"
        f"cache_store_log none\ncoredump_dir {work}\ncache_effective_user proxy\n"
        "shutdown_lifetime 0 seconds\ndns_nameservers 127.0.0.1\n"
    )
    _chown(work, "proxy")
    # squid's shared memory and IPC sockets have fixed names: a private /run and /dev/shm
    return _private_run(f"/usr/sbin/squid -N -f {config}", "/run", "/dev/shm")


def _haproxy(host: Host, port: int, work: Path) -> list[str]:
    config = work / "haproxy.cfg"
    config.write_text(
        "global\n  maxconn 64\ndefaults\n  mode http\n  timeout client 5s\n"
        "  timeout connect 2s\n  timeout server 5s\n"
        f"frontend lab\n  bind {host.ipv4}:{port}\n  default_backend web\n"
        "backend web\n"  # no servers: every request gets haproxy's own 503 page
    )
    return ["/usr/sbin/haproxy", "-db", "-f", str(config)]


def _named(host: Host, port: int, work: Path) -> list[str]:
    config = work / "named.conf"
    config.write_text(
        f'options {{\n  directory "{work}";\n  listen-on port {port} {{ {host.ipv4}; }};\n'
        f'  listen-on-v6 {{ none; }};\n  pid-file "{work}/named.pid";\n  recursion no;\n'
        f'  session-keyfile "{work}/session.key";\n}};\ncontrols {{ }};\n'
    )
    return ["/usr/sbin/named", "-g", "-c", str(config), "-n", "1"]


def _nsd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "nsd.conf"
    config.write_text(
        f'server:\n  ip-address: {host.ipv4}\n  port: {port}\n  username: ""\n'
        f'  chroot: ""\n  zonesdir: "{work}"\n  database: ""\n  pidfile: "{work}/nsd.pid"\n'
        f'  xfrdfile: "{work}/xfrd.state"\n  zonelistfile: "{work}/zone.list"\n'
        f'  logfile: "{work}/nsd.log"\n  server-count: 1\n'
        "remote-control:\n  control-enable: no\n"
    )
    return ["/usr/sbin/nsd", "-d", "-c", str(config)]


def _telnetd(host: Host, port: int, work: Path) -> list[str]:
    config = work / "inetd.conf"
    config.write_text(f"{host.ipv4}:{port} stream tcp nowait root /usr/sbin/telnetd telnetd\n")
    return ["/usr/sbin/inetutils-inetd", "-d", "-p", str(work / "inetd.pid"), str(config)]


def _mariadb(host: Host, port: int, work: Path) -> list[str]:
    data = work / "data"
    if not data.exists():
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
             "--skip-test-db", "--auth-root-authentication-method=socket"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    # an account that may connect from anywhere, as a database serving other hosts has: without
    # one the server refuses the scanner's address before its greeting
    init = work / "init.sql"
    init.write_text("CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'lab-only';\n")
    _chown(work, "mysql")
    return [
        "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", "--user=mysql",
        f"--socket={work}/mysqld.sock", f"--pid-file={work}/mysqld.pid",
        f"--bind-address={host.ipv4}", f"--port={port}", "--skip-log-bin",
        "--innodb-buffer-pool-size=8M", "--skip-name-resolve", f"--init-file={init}",
    ]  # fmt: skip


def _postgresql(host: Host, port: int, work: Path) -> list[str]:
    binaries = _PG_BIN
    data = work / "data"
    _chown(work, "postgres")
    if not data.exists():
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(binaries / "initdb"), "-D", str(data),
             "-A", "reject", "--no-sync", "-U", "postgres"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return [
        "runuser", "-u", "postgres", "--", str(binaries / "postgres"), "-D", str(data),
        "-h", str(host.ipv4), "-p", str(port), "-k", str(work),
    ]  # fmt: skip


def _node_exporter(host: Host, port: int, work: Path) -> list[str]:
    return [
        "/usr/bin/prometheus-node-exporter", f"--web.listen-address={host.ipv4}:{port}",
        "--collector.disable-defaults", "--collector.uname",
    ]  # fmt: skip


def _zabbix_agent(host: Host, port: int, work: Path) -> list[str]:
    config = work / "zabbix_agentd.conf"
    config.write_text(
        f"Server=0.0.0.0/0\nListenIP={host.ipv4}\nListenPort={port}\nPidFile={work}/zabbix.pid\n"
        "LogType=console\nStartAgents=3\nAllowRoot=1\nServerActive=\n"
    )
    return ["/usr/sbin/zabbix_agentd", "-f", "-c", str(config)]


def _redis_sentinel(host: Host, port: int, work: Path) -> list[str]:
    config = work / "sentinel.conf"
    config.write_text(f"port {port}\nbind {host.ipv4}\ndir {work}\nprotected-mode no\n")
    return ["/usr/bin/redis-sentinel", str(config)]


def _nats(host: Host, port: int, work: Path) -> list[str]:
    return ["/usr/sbin/nats-server", "-a", str(host.ipv4), "-p", str(port), "-n", "lab-nats"]


def _influxdb(host: Host, port: int, work: Path) -> list[str]:
    config = work / "influxdb.conf"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{port + 1}"\n'
        f'[meta]\n  dir = "{work}/meta"\n[data]\n  dir = "{work}/data"\n'
        f'  wal-dir = "{work}/wal"\n[http]\n  bind-address = "{host.ipv4}:{port}"\n'
        "  log-enabled = false\n"
    )
    return ["/usr/bin/influxd", "-config", str(config)]


def _etcd(host: Host, port: int, work: Path) -> list[str]:
    client = f"http://{host.ipv4}:{port}"
    peer = f"http://127.0.0.1:{port + 1}"  # 2380 beside the standard 2379, as etcd's own
    return [
        "/usr/bin/etcd", "--name", "lab", "--data-dir", str(work / "data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"lab={peer}", "--log-level", "error",
    ]  # fmt: skip


def _smbd(host: Host, port: int, work: Path) -> list[str]:
    for sub in ("lock", "state", "cache", "private", "ncalrpc", "pid"):
        (work / sub).mkdir(exist_ok=True)
    config = work / "smb.conf"
    config.write_text(
        f"[global]\n  smb ports = {port}\n  interfaces = {host.ipv4}\n"
        "  bind interfaces only = yes\n  disable netbios = yes\n  workgroup = LAB\n"
        "  netbios name = LABSRV\n  server role = standalone server\n"
        f"  pid directory = {work}/pid\n  lock directory = {work}/lock\n"
        f"  state directory = {work}/state\n  cache directory = {work}/cache\n"
        f"  private dir = {work}/private\n  ncalrpc dir = {work}/ncalrpc\n"
        f"  log file = {work}/smbd.log\n  load printers = no\n  printing = bsd\n"
        "  printcap name = /dev/null\n  disable spoolss = yes\n"
    )
    return _private_run(
        f"/usr/sbin/smbd --foreground --no-process-group --configfile={config}", "/run"
    )


def _openvpn(host: Host, port: int, work: Path) -> list[str]:
    key, cert = work / "key.pem", work / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=lab-vpn", "-days", "2", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return [
        "/usr/sbin/openvpn", "--dev", "null", "--tls-server", "--proto", "udp",
        "--local", str(host.ipv4), "--lport", str(port), "--ca", str(cert), "--cert", str(cert),
        "--key", str(key), "--dh", "none", "--verb", "0",
    ]  # fmt: skip


def _vnc(host: Host, port: int, work: Path) -> list[str]:
    # the X display's lock and socket live under /tmp: a private one per instance; the display
    # number follows the port (X's abstract socket is shared by the network namespace)
    return _private_run(
        f"/usr/bin/Xtigervnc :{port} -rfbport {port} -interface {host.ipv4} -SecurityTypes None "
        "-nolisten tcp -geometry 320x200 -depth 16",
        "/tmp",
    )


MORE_LAUNCHERS: dict[str, Launcher] = {
    "apache2": _apache2,
    "squid": _squid,
    "haproxy": _haproxy,
    "named": _named,
    "nsd": _nsd,
    "telnetd": _telnetd,
    "mariadb": _mariadb,
    "postgresql": _postgresql,
    "node-exporter": _node_exporter,
    "zabbix-agent": _zabbix_agent,
    "redis-sentinel": _redis_sentinel,
    "nats": _nats,
    "influxdb": _influxdb,
    "etcd": _etcd,
    "smbd": _smbd,
    "openvpn": _openvpn,
    "vnc": _vnc,
}

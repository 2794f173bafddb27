"""The `pps serve` command: the guard's desk in the browser (ppsguard.serve), on uvicorn.

Thin: check the options (a non-loopback address needs --token-file, TLS needs both files),
build the app, run the server until Ctrl-C. Read-only: the desk never applies a rule set.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer

from ppsguard.cli.storeopt import ReadStoreOption, read_url
from ppsguard.digits import decimal
from ppsguard.errors import UsageError

HELP = """Serve the guard's desk on a web page: the fleet (every host in the store: last seen,
open doors, findings by severity, drift, hosts gone silent), each host's building (65,536 doors
and windows lit by the audit's verdicts; click a door for its card: sockets, registry entry,
scan evidence, findings with remedies, history), live alerts from `pps watch`, the registry
(entries, an explain form, lint, the compiled rule set) and the audit reports of every recorded
run (HTML, Markdown, CSV).

Listens on 127.0.0.1:8443 by default. Any other address needs --token-file (the token is asked
for as `Authorization: Bearer TOKEN` or on a login page that sets an HttpOnly, SameSite=Strict
cookie). Add --tls-cert and --tls-key for HTTPS, or put a reverse proxy in front
(docs/dashboard.md). Read-only: it reads the store and the registry, and applies nothing.

Example: pps serve --store /var/lib/ppsguard/ppsguard.db --registry registry.yaml \\
    --alerts web1=/var/log/pps-alerts.jsonl     # then open http://127.0.0.1:8443/

Exit codes: 130 stopped with Ctrl-C (SIGINT), 2 bad option (a non-loopback address without
a token, a missing file), 3 the address is in use or the store cannot be read.
"""


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or `:PORT` (loopback)."""
    host, sep, port_text = text.rpartition(":")
    port = decimal(port_text)
    if not sep or port is None or not 0 < port < 65536:
        raise UsageError("--listen needs HOST:PORT, e.g. 127.0.0.1:8443", token=text)
    host = host.strip("[]") or "127.0.0.1"
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError("--listen needs an IP address (or localhost)", token=text) from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the token file: {exc}", token=str(path)) from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise UsageError(
            "the token file must hold one token of at least 16 characters", token=str(path)
        )
    return token


def register(app: typer.Typer) -> None:
    @app.command(
        "serve",
        help=HELP,
        short_help="Serve the guard's desk: fleet, buildings, live alerts, registry, reports.",
    )
    def serve(  # noqa: PLR0917 - Typer maps parameters to options
        store: ReadStoreOption = None,
        listen: Annotated[
            str,
            typer.Option("--listen", help="Address and port to listen on (HOST:PORT)."),
        ] = "127.0.0.1:8443",
        token_file: Annotated[
            Path | None,
            typer.Option(
                "--token-file",
                help="File holding the access token (required for a non-loopback --listen).",
            ),
        ] = None,
        tls_cert: Annotated[
            Path | None, typer.Option("--tls-cert", help="PEM certificate (chain) for HTTPS.")
        ] = None,
        tls_key: Annotated[
            Path | None, typer.Option("--tls-key", help="PEM private key for HTTPS.")
        ] = None,
        registry: Annotated[
            Path | None,
            typer.Option(
                "--registry",
                help="The registry for the Registry page, the door cards and the CSV reports "
                "(default: the file each audit recorded, when it is readable here).",
            ),
        ] = None,
        alerts: Annotated[
            list[str] | None,
            typer.Option(
                "--alerts",
                metavar="[HOST=]FILE",
                help="Follow what `pps watch --alerts-to jsonl:FILE` (alerts) or `pps watch "
                "--jsonl > FILE` (events and alerts) writes (repeatable); HOST names the "
                "building whose doors blink, as the fleet page shows it.",
            ),
        ] = None,
        allow_host: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-host",
                help="Also accept this Host header on a loopback desk (a reverse proxy's name).",
            ),
        ] = None,
    ) -> None:
        from ppsguard.serve.live import parse_alert_source
        from ppsguard.serve.security import Guard, host_names

        host, port = parse_listen(listen)
        token = read_token(token_file) if token_file is not None else None
        if token is None and not is_loopback(host):
            raise UsageError(
                "a non-loopback --listen needs --token-file (the desk would be open to anyone)",
                token=listen,
            )
        if (tls_cert is None) != (tls_key is None):
            raise UsageError("--tls-cert and --tls-key go together", token=str(tls_cert or tls_key))
        for path in (tls_cert, tls_key, registry):
            if path is not None and not path.is_file():
                raise UsageError("no such file", token=str(path))
        url = read_url(store)
        sources = tuple(parse_alert_source(a) for a in alerts or [])
        names = None
        if token is None:
            names = host_names(host, port) | {f"{h.lower()}:{port}" for h in allow_host or []}
            names |= frozenset(h.lower() for h in allow_host or [])
        guard = Guard(token=token, hosts=names, secure=tls_cert is not None)
        _run(url, registry, sources, guard, host, port, tls_cert, tls_key)


def _run(  # noqa: PLR0917 - the checked options, handed over once
    url: str,
    registry: Path | None,
    sources: tuple[tuple[str, Path], ...],
    guard: object,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    import asyncio
    import socket

    import uvicorn

    from ppsguard.errors import RuntimeFailure
    from ppsguard.serve.app import DeskConfig, make_app
    from ppsguard.serve.security import Guard
    from ppsguard.store import desk

    assert isinstance(guard, Guard)
    desk.last_run_id(url)  # the store answers (and is migrated) before we listen
    running: list[uvicorn.Server] = []
    app = make_app(
        DeskConfig(
            store=url,
            registry=registry,
            alerts=sources,
            guard=guard,
            stopping=lambda: bool(running) and running[0].should_exit,
        )
    )
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=2,  # open event streams must not hold Ctrl-C up
    )
    server = uvicorn.Server(config)
    running.append(server)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:  # bound here, so a busy address is one line, not uvicorn's traceback
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise RuntimeFailure(f"cannot listen on {shown}:{port}: {exc.strerror}") from None

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started and not task.done():  # noqa: ASYNC110 -- uvicorn has a flag, no event
            await asyncio.sleep(0.02)
        if server.started:  # said once the socket listens, so a reader may connect at once
            sys.stderr.write(
                f"serve: the desk is at {scheme}://{shown}:{port}/ (Ctrl-C stops it)\n"
            )
            sys.stderr.flush()
        await task

    try:
        asyncio.run(serve())
    finally:
        listener.close()

"""The desk's web application (Starlette): pages rendered by Jinja2 (autoescaped), fragments for
htmx, the building's data as JSON, live alerts as Server-Sent Events, and the reports.

    app = make_app(DeskConfig(store=url, registry=path, alerts=(("web1", Path(f)),),
                              guard=Guard(token=None, hosts=host_names("127.0.0.1", 8443))))

Store reads run in Starlette's thread pool (the route functions are plain functions); only the
event stream is a coroutine. Read-only: no route writes the store or touches a firewall.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ppsguard.errors import PpsError
from ppsguard.serve import building, cards, live, registry_view
from ppsguard.serve.security import (
    SESSION_COOKIE,
    Guard,
    GuardMiddleware,
    cookie_header,
    csrf_ok,
)
from ppsguard.store import desk
from ppsguard.store.fleet import fleet


class _RowId(IntegerConvertor):
    """A store row id in a URL path: 1 to 18 digits. SQLite's INTEGER holds 2**63 - 1; a
    longer number reached the query and raised OverflowError: a 500, and a traceback in the
    log, for any client that asked. Now such a path matches no route: 404."""

    regex = "[0-9]{1,18}"


register_url_convertor("rowid", _RowId())

STATIC = Path(__file__).parent / "static"
LISTED = 2000  # a host page lists its doors up to this many (the building draws them all)
# The fleet table shows this many rows unless asked for all (?all=1): sorting and filtering
# cover every host. 1,000 rows took Chromium 2-5 s to parse and lay out on the shared machine.
PAGE = 250
SORTS = {
    "host": lambda h: h["host"],
    "seen": lambda h: h["last_seen"],
    "doors": lambda h: h["open_doors"],
    "findings": lambda h: h["findings"],
    "high": lambda h: h["by_severity"].get("high", 0) + h["by_severity"].get("critical", 0),
    "silent": lambda h: h["silent_for_seconds"],
}


@dataclass(frozen=True, slots=True)
class DeskConfig:
    store: str
    registry: Path | None
    alerts: tuple[tuple[str, Path], ...]
    guard: Guard
    stopping: Callable[[], bool] = lambda: False  # the server is shutting down: end streams


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("ppsguard.serve", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if v else "-"
    env.filters["ago"] = cards.ago
    return Jinja2Templates(env=env)


def make_app(config: DeskConfig) -> Any:
    """The ASGI application: the Starlette app inside the guard middleware."""
    templates = _templates()
    built: dict[int, bytes] = {}  # run id -> its building document

    def page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("active", name.split(".", maxsplit=1)[0])
        values["csrf"] = request.scope.get("state", {}).get("csrf", "")
        values["token_auth"] = config.guard.token is not None
        return templates.TemplateResponse(request, name, values, status_code=status)

    def fleet_rows(request: Request) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        doc = fleet(config.store, now)  # one read of the store: each host carries its id
        rows = list(doc["hosts"])
        q = request.query_params.get("q", "").strip().lower()
        only = request.query_params.get("only", "")
        if q:
            rows = [h for h in rows if q in h["host"].lower()]
        if only == "stale":
            rows = [h for h in rows if h["stale"]]
        elif only == "findings":
            rows = [h for h in rows if h["findings"]]
        elif only == "drift":
            rows = [h for h in rows if cards.drifted(h["drift"])]
        sort = request.query_params.get("sort", "host")
        if sort not in SORTS:
            sort = "host"
        rows.sort(key=SORTS[sort], reverse=request.query_params.get("dir") == "desc")
        every = request.query_params.get("all") == "1"
        shown = [cards.fleet_row(h) for h in (rows if every else rows[:PAGE])]
        return {
            "hosts": shown,
            "matching": len(rows),
            "every": every,
            "summary": doc["summary"],
            "sort": sort,
            "q": q,
            "only": only,
        }

    def fleet_page(request: Request) -> Response:
        values = fleet_rows(request)
        if request.headers.get("hx-request") and not request.headers.get(
            "hx-history-restore-request"
        ):
            return page(request, "fleet_table.html", **values)
        return page(request, "fleet.html", **values)

    def host_page(request: Request) -> Response:
        host = desk.host(config.store, int(request.path_params["host_id"]))
        run = desk.newest_run(config.store, host.id, ("audit", "scan", "sockets"))
        rows = desk.run_doors(config.store, run.id, LISTED + 1) if run else []
        return page(
            request,
            "host.html",
            host=host,
            run=run,
            doors=rows if len(rows) <= LISTED else [],
            door_count=desk.door_count(config.store, run.id) if run else 0,
            meanings=building.MEANINGS,
            runs=desk.host_runs(config.store, host.id, 20),
        )

    def building_json(request: Request) -> Response:
        host = desk.host(config.store, int(request.path_params["host_id"]))
        run = desk.newest_run(config.store, host.id, ("audit", "scan", "sockets"))
        if run is None:
            body = orjson.dumps(building.building_data(host.identity.label, None, None, []))
        else:
            body = built.get(run.id) or b""
            if not body:  # a run never changes: its building is made once per process
                rows = desk.building_rows(config.store, run.id)
                data = building.building_data(host.identity.label, run.id, run.kind, rows)
                body = built[run.id] = orjson.dumps(data)
                while len(built) > 64:
                    built.pop(next(iter(built)))
        return Response(body, media_type="application/json")

    def door_card(request: Request) -> Response:
        host = desk.host(config.store, int(request.path_params["host_id"]))
        proto = str(request.path_params["proto"])
        port = int(request.path_params["port"])
        card = cards.door_card(config.store, config.registry, host, proto, port)
        return page(request, "door_card.html", card=card)

    def live_page(request: Request) -> Response:
        sources = [f"{h} ← {p}" for h, p in config.alerts]
        return page(request, "live.html", sources=sources)

    async def live_events(request: Request) -> Response:
        followers: list[Any] = [live.FileFollower(h, p) for h, p in config.alerts]
        followers.append(live.StoreFollower(config.store))
        await asyncio.to_thread(lambda: [f.poll() for f in followers])  # position at the end

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 1000\nevent: ready\ndata: {}\n\n"
            quiet = time.monotonic()
            while not config.stopping() and not await request.is_disconnected():
                found: list[live.Item] = []
                for follower in followers:
                    found += await asyncio.to_thread(follower.poll)
                for item in found:
                    data = orjson.dumps({**_item_dict(item), "knock": item.knock()})
                    yield b"event: " + item.type.encode() + b"\ndata: " + data + b"\n\n"
                    quiet = time.monotonic()
                if time.monotonic() - quiet > 15:
                    yield b": keep-alive\n\n"
                    quiet = time.monotonic()
                await asyncio.sleep(live.POLL)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
        )

    def registry_page(request: Request) -> Response:
        values: dict[str, Any] = {"registry": config.registry, "problem": None}
        if config.registry is None:
            return page(request, "registry.html", **values)
        try:
            reg = registry_view.load(config.registry)
            names = registry_view.host_names(reg)
            chosen = request.query_params.get("host") or (names[0] if names else None)
            target = request.query_params.get("target", "nftables")
            if target not in ("nftables", "iptables"):
                target = "nftables"
            values |= {
                "hosts": names,
                "chosen": chosen,
                "target": target,
                "entries": registry_view.entries(reg, chosen),
                "lint": registry_view.lint(reg),
                "compiled": registry_view.compiled(reg, chosen, target),
                "applied": cards.applied_differences(config.store, chosen),
            }
        except (PpsError, ValueError) as exc:
            values["problem"] = registry_view.problem(exc)
        return page(request, "registry.html", **values)

    async def explain_form(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request.scope, _field(form, "csrf")):
            return PlainTextResponse("403: the form's CSRF token does not match", 403)
        result: dict[str, Any] | None = None
        problem = None
        if config.registry is None:
            problem = "no registry: start pps serve with --registry FILE"
        else:
            try:
                result = await asyncio.to_thread(
                    registry_view.explain,
                    registry_view.load(config.registry),
                    _field(form, "host") or None,
                    _field(form, "from"),
                    _field(form, "to_port"),
                    _field(form, "to") or None,
                )
            except (PpsError, ValueError) as exc:
                problem = registry_view.problem(exc)
        asked = f"{_field(form, 'from')} {_field(form, 'to_port')}"
        return page(request, "explain_result.html", result=result, problem=problem, asked=asked)

    def reports_page(request: Request) -> Response:
        hosts = desk.all_hosts(config.store)
        runs = {h.id: desk.host_runs(config.store, h.id, 50) for h in hosts}
        return page(request, "reports.html", hosts=hosts, runs=runs)

    def report_file(request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        fmt = str(request.path_params["fmt"])
        text, media = cards.report(config.store, config.registry, run_id, fmt)
        return Response(
            text,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="audit-run-{run_id}.{fmt}"'},
        )

    def login_page(request: Request) -> Response:
        return page(request, "login.html", problem=None)

    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request.scope, _field(form, "csrf")):
            return PlainTextResponse("403: the form's CSRF token does not match", 403)
        token = config.guard.token
        given = _field(form, "token")
        if token is None or not config.guard.authorised(
            {"headers": [(b"authorization", f"Bearer {given}".encode())]}
        ):
            return page(request, "login.html", status=401, problem="wrong token")
        response = RedirectResponse("/", status_code=303)
        response.raw_headers.append(
            (
                b"set-cookie",
                cookie_header(SESSION_COOKIE, config.guard.session, secure=config.guard.secure),
            )
        )
        return response

    async def failure(request: Request, exc: Exception) -> Response:
        status = 404 if getattr(exc, "exit_code", 3) == 2 else 500
        return page(request, "error.html", status=status, problem=registry_view.problem(exc))

    routes = [
        Route("/", fleet_page),
        Route("/host/{host_id:rowid}", host_page),
        Route("/host/{host_id:rowid}/building.json", building_json),
        Route("/host/{host_id:rowid}/door/{proto:str}/{port:int}", door_card),
        Route("/live", live_page),
        Route("/live/events", live_events),
        Route("/registry", registry_page),
        Route("/registry/explain", explain_form, methods=["POST"]),
        Route("/reports", reports_page),
        Route("/reports/{run_id:rowid}.{fmt:str}", report_file),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={PpsError: failure})
    return GuardMiddleware(app, config.guard)


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _item_dict(item: live.Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "host": item.host,
        "kind": item.kind,
        "severity": item.severity,
        "message": item.message,
        "remote": item.remote,
        "ports": list(item.ports[:32]),
        "proto": item.proto,
        "at": time.strftime("%H:%M:%S", time.localtime(item.at)) if item.at else "",
        "entry": item.entry,
    }

"""``tarscascade resolve``: ask QueryF over the TARS protocol, as a TARS client does.

It deliberately does not use the admin API: it shows what the registry (or a node
agent, with ``--via``) actually answers on the wire, after group, set and station
selection for the calling identity (``--node-name`` is sent as the ``node_name``
context, which the server uses instead of the caller's IP).
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tarscascade.cli.registry_client import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    JsonOpt,
    check_object_id,
    fail,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from tarscascade.wire.idl.endpointf import EndpointF
    from tarscascade.wire.interface import Method

DEFAULT_VIA = "127.0.0.1:17890"
CALL_TIMEOUT = 5.0


class MethodChoice(StrEnum):
    """`resolve --method`: a QueryF function by a short name (catalog.QueryMethod: by its own)."""

    ID = "id"
    ANY = "any"
    ALL = "all"
    GROUP = "group"
    STATION = "station"
    SET = "set"


def method_of(choice: MethodChoice) -> Method:
    """The QueryF function (imported here: the wire layer is not needed for --help)."""
    from tarscascade.wire.idl import queryf

    return {
        MethodChoice.ID: queryf.FIND_OBJECT_BY_ID,
        MethodChoice.ANY: queryf.FIND_4ANY,
        MethodChoice.ALL: queryf.FIND_4ALL,
        MethodChoice.GROUP: queryf.FIND_IN_SAME_GROUP,
        MethodChoice.STATION: queryf.FIND_IN_SAME_STATION,
        MethodChoice.SET: queryf.FIND_IN_SAME_SET,
    }[choice]


def parse_via(via: str) -> tuple[str, int]:
    host, sep, port = via.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--via must be HOST:PORT, got {via!r}", EXIT_USAGE)
    return host, int(port)


def endpoint_text(ep: EndpointF) -> str:
    from tarscascade.errors import EndpointSyntaxError
    from tarscascade.wire.endpoint import Endpoint, format_endpoint

    try:
        return format_endpoint(Endpoint.from_endpointf(ep))
    except EndpointSyntaxError:
        return f"{ep.host}:{ep.port}"


async def _query(
    host: str, port: int, method: Method, args: list[str], node_name: str | None
) -> tuple[int, list[EndpointF], list[EndpointF]]:
    from tarscascade.transport import Channel, ChannelOptions
    from tarscascade.wire.idl.queryf import FIND_OBJECT_BY_ID, QUERY_SERVANT

    options = ChannelOptions(connect_timeout=CALL_TIMEOUT, call_timeout=CALL_TIMEOUT)
    context = {"node_name": node_name} if node_name else None
    async with Channel(host, port, options) as ch:
        out = await ch.call(QUERY_SERVANT, method, *args, context=context)
    if method is FIND_OBJECT_BY_ID:  # returns the active list only, no ret code
        return 0, list(out[0]), []
    return int(out[0]), list(out[1]), list(out[2])


def resolve(
    object_id: Annotated[str, typer.Argument(metavar="OBJ", help="App.Server.Obj")],
    via: Annotated[
        str, typer.Option("--via", metavar="HOST:PORT", help="QueryObj of a registry or node.")
    ] = DEFAULT_VIA,
    method: Annotated[
        MethodChoice | None,
        typer.Option(
            "--method",
            help="QueryF function: findObjectById / 4Any / 4All / InSameGroup / InSameStation"
            " / InSameSet. Default: set with --set, station with --station, else any.",
            show_default=False,
        ),
    ] = None,
    set_id: Annotated[str | None, typer.Option("--set", help="Set id for --method set.")] = None,
    station: Annotated[
        str | None, typer.Option("--station", help="Station for --method station.")
    ] = None,
    node_name: Annotated[
        str | None, typer.Option("--node-name", help="Caller identity (context node_name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolve an object over TARS (QueryF), printing the active and inactive endpoints."""
    check_object_id(object_id)
    host, port = parse_via(via)
    if method is None:
        method = (
            MethodChoice.SET if set_id else MethodChoice.STATION if station else MethodChoice.ANY
        )
    args = [object_id]
    if method is MethodChoice.SET:
        if not set_id:
            fail("--method set needs --set NAME.AREA.GROUP", EXIT_USAGE)
        args.append(set_id)
    elif method is MethodChoice.STATION:
        if not station:
            fail("--method station needs --station NAME", EXIT_USAGE)
        args.append(station)
    func = method_of(method)
    from tarscascade.errors import (
        CallTimeoutError,
        ConnectError,
        ConnectionClosedError,
        ProtocolError,
        ServerError,
    )

    try:
        import asyncio

        ret, active, inactive = asyncio.run(_query(host, port, func, args, node_name))
    except ConnectError as exc:
        fail(str(exc), EXIT_UNREACHABLE)  # names host and port already
    except (CallTimeoutError, ConnectionClosedError) as exc:
        fail(f"no answer from {host}:{port}: {exc}", EXIT_UNREACHABLE)
    except (ServerError, ProtocolError) as exc:
        fail(f"{func.name} failed at {host}:{port}: {exc}", EXIT_REFUSED)
    if as_json:
        print_json(_as_json(object_id, func.name, via, ret, active, inactive))
    else:
        for title, eps in (("active", active), ("inactive", inactive)):
            print_table(f"{title} ({len(eps)})", ("endpoint", "node", "set", "bak"), _rows(eps))
    if ret != 0:
        fail(f"{func.name} answered ret={ret} (unknown station or set id?)", EXIT_REFUSED)


def _rows(eps: list[EndpointF]) -> list[tuple[object, ...]]:
    return [(endpoint_text(e), e.nodeName, e.setId, e.bakFlag) for e in eps]


def _as_json(
    object_id: str,
    func: str,
    via: str,
    ret: int,
    active: list[EndpointF],
    inactive: list[EndpointF],
) -> dict[str, Any]:
    return {
        "object_id": object_id,
        "function": func,
        "via": via,
        "ret": ret,
        "active": [dataclasses.asdict(e) | {"endpoint": endpoint_text(e)} for e in active],
        "inactive": [dataclasses.asdict(e) | {"endpoint": endpoint_text(e)} for e in inactive],
    }

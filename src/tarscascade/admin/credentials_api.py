"""Node credentials in the admin API: issue (the secret is in this one answer), show, revoke.

``POST /v1/nodes/{name}/credentials`` is an admin write (the admin token when one is
set); its answer is never cached (``Cache-Control: no-store``) and nothing logs it.
Only registries in the per-node mode (``--node-auth``) keep credentials: others answer
409 saying so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from tarscascade.admin.http import error_response
from tarscascade.admin.models import Model, errors
from tarscascade.registry.admin_ops import validate_node_name
from tarscascade.registry.node_auth import NodeAuthority
from tarscascade.wire.endpoint import parse_endpoint

_bearer = HTTPBearer(auto_error=False, description="the admin token, needed for writes")
_NO_STORE = {"Cache-Control": "no-store"}
MAX_HOSTS = 16


class CredentialBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    hosts: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list,
        max_length=MAX_HOSTS,
        description="hosts the node may announce endpoints on (default: its node address)",
    )


class CredentialIssued(Model):
    node: str
    secret: str = Field(description="the node's secret: in this answer only")
    hosts: list[str]
    note: str


class CredentialShown(Model):
    node: str
    hosts: list[str]
    created_at: float


class CredentialRevoked(Model):
    node: str
    revoked: bool


def _checked_hosts(hosts: list[str]) -> list[str]:
    for h in hosts:
        parse_endpoint(f"tcp -h {h} -p 1")  # EndpointSyntaxError -> 400
    return sorted(set(hosts))


def add_credential_routes(r: APIRouter, authority: NodeAuthority) -> None:
    base = "/v1/nodes/{name}/credentials"

    def not_node_mode() -> Response | None:
        if authority.mode == "node":
            return None
        return error_response(
            409,
            "this registry does not keep per-node credentials (it runs in the "
            f"{authority.mode!r} mode); start it with --node-auth",
        )

    @r.post(
        base,
        tags=["nodes"],
        status_code=201,
        dependencies=[Security(_bearer)],
        summary="issue a node secret (shown in this answer only; replaces an older one)",
        response_model=CredentialIssued,
        responses=errors(400, 401, 403, 409, 413, 503),
    )
    async def issue(name: str, body: Annotated[CredentialBody | None, Body()] = None) -> Response:
        validate_node_name(name)
        refused = not_node_mode()
        if refused is not None:
            return refused
        hosts = _checked_hosts(body.hosts if body is not None else [])
        secret = await authority.issue(name, hosts)
        out: dict[str, Any] = {
            "node": name,
            "secret": secret,
            "hosts": hosts,
            "note": "shown once: put it in the node's --token-file (mode 0600)",
        }
        return JSONResponse(out, status_code=201, headers=_NO_STORE)

    @r.get(
        base,
        tags=["nodes"],
        summary="whether a node has a credential (never the secret)",
        response_model=CredentialShown,
        responses=errors(400, 404, 409),
    )
    async def show(name: str) -> Response:
        validate_node_name(name)
        refused = not_node_mode()
        if refused is not None:
            return refused
        cred = authority.credential(name)
        if cred is None:
            return error_response(404, f"node {name} has no credential")
        return JSONResponse(
            {"node": name, "hosts": list(cred.hosts), "created_at": cred.created_at}
        )

    @r.delete(
        base,
        tags=["nodes"],
        dependencies=[Security(_bearer)],
        summary="revoke a node's secret (its session ends)",
        response_model=CredentialRevoked,
        responses=errors(400, 401, 403, 404, 409, 413, 503),
    )
    async def revoke(name: str) -> Response:
        validate_node_name(name)
        refused = not_node_mode()
        if refused is not None:
            return refused
        if not await authority.revoke(name):
            return error_response(404, f"node {name} has no credential")
        return JSONResponse({"node": name, "revoked": True})

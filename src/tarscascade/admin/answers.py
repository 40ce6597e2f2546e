"""The JSON shapes of the registry's answers that more than one surface serves (the
admin API and the dashboard): an endpoint as a view, a drain's result and status."""

from __future__ import annotations

from typing import Any

from tarscascade.errors import EndpointSyntaxError
from tarscascade.model import EndpointRecord
from tarscascade.registry.admin_ops import TRANSPORTS, RegistryAdmin
from tarscascade.registry.drains import DrainJob, DrainResult
from tarscascade.wire.endpoint import Endpoint, format_endpoint

Json = dict[str, Any]


def endpoint_string(r: EndpointRecord) -> str:
    """The record as a TARS endpoint string (``-s`` is the registry's set id)."""
    try:
        ep = Endpoint(
            transport=TRANSPORTS[r.istcp],  # type: ignore[arg-type]
            host=r.host,
            port=r.port,
            timeout=r.timeout,
            grid=r.grid,
            qos=r.qos,
            weight=r.weight,
            weight_type=r.weight_type,
            auth_type=r.auth_type,
            set_id=r.set_id,
        )
    except (EndpointSyntaxError, KeyError):
        return f"{TRANSPORTS.get(r.istcp, 'tcp')} -h {r.host} -p {r.port}"
    return format_endpoint(ep)


def endpoint_view(admin: RegistryAdmin, r: EndpointRecord) -> Json:
    view = admin.endpoint_view(r)
    view["endpoint"] = endpoint_string(r)
    return view


def drained(admin: RegistryAdmin, job_id: int, res: DrainResult) -> Json:
    return {
        "id": job_id,
        "revision": res.version.revision,
        "version": {"epoch": res.version.epoch, "revision": res.version.revision},
        "changed": res.changed,
        "endpoint": endpoint_view(admin, res.record),
        "elapsed_s": round(res.elapsed_s, 6),
        "nodes": res.nodes,
        "acked": res.acked,
        "missing": res.missing,
        "offline": res.offline,
        "complete": res.complete,
    }


def drain_status(admin: RegistryAdmin, job: DrainJob) -> Json:
    p = job.progress()
    r = job.record
    return {
        "id": job.id,
        "object_id": r.object_id,
        "endpoint": endpoint_string(r),
        "revision": job.version.revision,
        "started_at": round(job.started_at, 3),
        "timeout": job.timeout,
        "done": p.done,
        "total": len(job.nodes),
        "acked_count": p.acked_count,
        "missing": p.missing,
        "elapsed_s": round(p.elapsed_s, 3),
        "result": drained(admin, job.id, job.result) if job.result is not None else None,
    }

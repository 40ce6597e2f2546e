"""A batch of endpoint writes, all or nothing, in one store transaction (``POST /v1/batch``).

For deploy systems that change many endpoints at once: one commit (one fsync, one
revision, one push to every node) instead of one per endpoint, and no half-applied
deploy when one of them is refused. Every op is validated before anything is written
(a bad one is named by its index, ``ops[3]: ...``); a missing endpoint (update, remove)
or an existing one (add without ``replace``) fails the whole batch, named as users
write endpoints. Ops apply in order, so a batch may add an endpoint and then change it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tarscascade.errors import ConflictError, NotFoundError, ValidationError
from tarscascade.model import EndpointRecord, Record
from tarscascade.registry.admin_ops import RegistryAdmin, endpoint_name, record_name
from tarscascade.store import Insert, Patch, PatchCheck, WriteOp

#: ops per batch: one transaction holds the store's write lock for all of them
MAX_BATCH_OPS = 10_000


@dataclass(frozen=True, slots=True)
class AddEndpoint:
    object_id: str
    endpoint: str  # a TARS endpoint string
    options: dict[str, Any]  # RegistryAdmin.build_endpoint's keyword arguments
    replace: bool = False


@dataclass(frozen=True, slots=True)
class UpdateEndpoint:
    object_id: str
    host: str
    port: int
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoveEndpoint:
    object_id: str
    host: str
    port: int


BatchItem = AddEndpoint | UpdateEndpoint | RemoveEndpoint


@dataclass(frozen=True, slots=True)
class BatchResult:
    revision: int  # the store revision that holds the whole batch
    applied: bool  # False: committed, but the catalog had not caught up when answering
    ops: int
    events: int  # changes logged (an update that changed nothing logs none)


def _op(admin: RegistryAdmin, item: BatchItem) -> tuple[WriteOp, str]:
    if isinstance(item, AddEndpoint):
        record = admin.build_endpoint(item.object_id, item.endpoint, **item.options)
        return admin.add_op(record, replace=item.replace), record_name(record)
    name = endpoint_name(item.object_id, item.host, item.port)
    if isinstance(item, UpdateEndpoint):
        return admin.update_op(item.object_id, item.host, item.port, item.changes), name
    return admin.remove_op(item.object_id, item.host, item.port), name


async def apply_batch(admin: RegistryAdmin, items: Sequence[BatchItem]) -> BatchResult:
    """Validate every item, then write them all in one transaction (or nothing)."""
    admin.refuse_owned("endpoints")
    if not items:
        raise ValidationError("a batch needs at least one op")
    if len(items) > MAX_BATCH_OPS:
        raise ValidationError(f"{len(items)} ops in one batch, at most {MAX_BATCH_OPS}")
    ops: list[WriteOp] = []
    names: dict[str, str] = {}  # store key -> how users name it, first op that named it
    for i, item in enumerate(items):
        try:
            op, name = _op(admin, item)
        except ValidationError as exc:
            raise ValidationError(f"ops[{i}]: {exc}") from exc
        if isinstance(op, Patch) and op.check is not None:
            op = dataclasses.replace(op, check=_indexed(op.check, i))
        ops.append(op)
        names.setdefault(op.key, f"ops[{i}] {name}")
    try:
        done = await admin.core.commit(ops)
    except NotFoundError as exc:
        what = ", ".join(names.get(k, k) for k in exc.keys)
        raise NotFoundError(exc.keys, f"{what}; nothing changed") from exc
    except ConflictError as exc:
        if not any(isinstance(op, Insert) for op in ops):
            raise
        # the store names its key; name the added endpoints that exist now instead
        exists = [names[op.key] for op in ops if isinstance(op, Insert) and _exists(admin, op)]
        shown = "; ".join(exists[:5]) or "an added endpoint"
        raise ConflictError(
            f"{shown} exists already (replace: true overwrites it); nothing changed"
        ) from exc
    return BatchResult(done.revision, done.applied, len(ops), len(done.events))


def _indexed(check: PatchCheck, i: int) -> PatchCheck:
    """The check of a patch, its refusal naming the op (it runs in the transaction, on the
    row as the database has it: a set id made invalid there is only seen then)."""

    def indexed(before: Record | None, after: Record) -> None:
        try:
            check(before, after)
        except ValidationError as exc:
            raise ValidationError(f"ops[{i}]: {exc}") from exc

    return indexed


def _exists(admin: RegistryAdmin, op: Insert) -> bool:
    r = op.record
    assert isinstance(r, EndpointRecord)
    return any(e.host == r.host and e.port == r.port for e in admin.catalog.get_object(r.object_id))

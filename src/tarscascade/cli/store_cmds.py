"""``tarscascade store ...``: operations on the database itself (not through a registry).

Backups, restores and lineage (epochs): what an operator runs around a restore. They talk
to the database directly, so they work with no registry running; running registries
notice what they do within a tail round (a new epoch is reloaded, a confirmation ends the
hold on the fleet).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tarscascade.cli.registry_client import EXIT_REFUSED, EXIT_USAGE, JsonOpt, fail, print_json

if TYPE_CHECKING:  # the store stack is imported by the commands that run (CLI start-up)
    from tarscascade.store import Lineage, Served, SqlStore

store_app = typer.Typer(
    help="The database: status, backup, restore, new-epoch, confirm-epoch.",
    no_args_is_help=True,
)

DbOpt = Annotated[
    str,
    typer.Option(
        "--db", envvar="TARSCASCADE_DB", help="Database URL, as given to `tarscascade registry`."
    ),
]
MaxLossOpt = Annotated[
    float | None,
    typer.Option(
        "--max-epoch-loss",
        min=0.0,
        max=1.0,
        help="A new epoch that loses more than this fraction of the endpoints starts "
        "unconfirmed (default 0.5, the registry's).",
    ),
]
DEFAULT_DB = "sqlite:///.tarscascade/registry.db"


def _open(db: str) -> SqlStore:
    from tarscascade.errors import StoreError
    from tarscascade.store import SqlStore

    try:
        return SqlStore.open(db, create="never")
    except StoreError as exc:
        fail(str(exc), EXIT_REFUSED)


def _max_loss(given: float | None) -> float:
    from tarscascade.registry.core import DEFAULT_MAX_EPOCH_LOSS

    return DEFAULT_MAX_EPOCH_LOSS if given is None else given


def _lineage_view(lineage: Lineage) -> dict[str, Any]:
    return dataclasses.asdict(lineage)


def _say_lineage(lineage: Lineage) -> None:
    prev = lineage.previous_endpoints
    typer.echo(f"epoch      {lineage.epoch}  ({lineage.reason})")
    before = "unknown" if prev is None else str(prev)
    typer.echo(f"endpoints  {lineage.endpoints} when it began; before: {before}")
    if lineage.confirmed:
        by = f" by {lineage.confirmed_by}" if lineage.confirmed_by else ""
        typer.echo(f"confirmed  yes{by}")
    else:
        typer.echo(
            "confirmed  NO: nodes keep their old replica until `tarscascade store "
            "confirm-epoch` (or a registry started with --confirm-epoch)"
        )


@store_app.command("status")
def status(db: DbOpt = DEFAULT_DB, as_json: JsonOpt = False) -> None:
    """The database's epoch, revision, lineage and the SQLite lineage marker."""
    with _open(db) as store:
        snap = store.load()
        lineage = store.lineage()
        served = store.last_served()
    out = {
        "epoch": snap.epoch,
        "revision": snap.revision,
        "endpoints": len(snap.endpoints),
        "nodes": len(snap.nodes),
        "lineage": _lineage_view(lineage),
        "marker": dataclasses.asdict(served) if served is not None else None,
    }
    if as_json:
        print_json(out)
        return
    typer.echo(f"revision   {snap.revision}  ({len(snap.endpoints)} endpoints)")
    _say_lineage(lineage)
    if served is not None:
        typer.echo(
            f"marker     a registry served epoch {served.epoch} revision {served.revision} "
            f"({served.endpoints} endpoints)"
        )


@store_app.command("backup")
def backup(
    dest: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """A consistent copy of a live SQLite database (MySQL/PostgreSQL: see README)."""
    path = _sqlite_file(db)
    if dest.exists():
        fail(f"{dest} exists: give a new file name", EXIT_USAGE)
    _copy(path, dest)
    typer.echo(f"backed up {path} to {dest}")


@store_app.command("restore")
def restore(
    source: Annotated[Path, typer.Argument(help="A backup made by `store backup`.")],
    db: DbOpt = DEFAULT_DB,
    reason: Annotated[str, typer.Option(help="Recorded with the new epoch.")] = "",
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Confirm the new epoch at once.")
    ] = False,
    max_loss: MaxLossOpt = None,
) -> None:
    """Put a SQLite backup in place (registries may run) and start a new epoch on it.

    The copy goes through SQLite's backup API into the database file itself, so running
    registries see a restore (not a vanished file). The new epoch is judged against what
    the database held before (or what a registry served, from the lineage marker).
    """
    from tarscascade.store import Served
    from tarscascade.store.marker import marker_path, read_marker

    path = _sqlite_path(db)
    if not source.is_file():
        fail(f"no backup file {source}", EXIT_USAGE)
    with _open(f"sqlite:///{source}"):
        pass  # a tarscascade database, at a schema this version reads
    before: Served | None
    if path.exists():
        with _open(db) as store:
            snap = store.load()
        before = Served(snap.epoch, snap.revision, len(snap.endpoints))
    else:  # the file is gone: what a registry last served from it, if it left a marker
        before = read_marker(marker_path(path))
    why = reason or f"restored from {source.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}"
    # The new epoch is started in a staging copy, which then goes in place in one step: a
    # running registry never sees the restored data without its epoch (it would call the
    # rollback itself, under its own reason, and the restore would start a second epoch).
    staging = path.with_name(f".{path.name}.restore-{os.getpid()}")
    try:
        _copy(source, staging)
        with _open(f"sqlite:///{staging}") as store:
            lineage = store.new_epoch(f"store restore: {why}", before, _max_loss(max_loss))
            if confirm and not lineage.confirmed:
                lineage = store.confirm_epoch("store restore --confirm", lineage.epoch)
        _copy(staging, path)
    finally:
        for leftover in (staging, *staging.parent.glob(f"{staging.name}-*")):  # -wal, -shm
            leftover.unlink(missing_ok=True)
    typer.echo(f"restored {source} into {path}")
    _say_lineage(lineage)


@store_app.command("new-epoch")
def new_epoch(
    db: DbOpt = DEFAULT_DB,
    reason: Annotated[str, typer.Option(help="Recorded with the new epoch.")] = "",
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Confirm the new epoch at once.")
    ] = False,
    max_loss: MaxLossOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a new epoch on the database as it is (after restoring it by other means).

    Every registry reloads and every node takes a snapshot. The loss is judged against
    what a registry last served (the SQLite lineage marker) when known, else nothing is
    lost (the data is taken as it is).
    """
    with _open(db) as store:
        marked = store.last_served()
        previous = marked if marked is not None and marked.epoch == store.epoch else None
        lineage = store.new_epoch(
            f"store new-epoch: {reason or 'planned'}", previous, _max_loss(max_loss)
        )
        if confirm and not lineage.confirmed:
            lineage = store.confirm_epoch("store new-epoch --confirm", lineage.epoch)
    if as_json:
        print_json(_lineage_view(lineage))
        return
    _say_lineage(lineage)


@store_app.command("confirm-epoch")
def confirm_epoch(
    db: DbOpt = DEFAULT_DB,
    epoch: Annotated[
        str | None,
        typer.Option(help="Refuse unless this is the current epoch (as `store status` showed)."),
    ] = None,
    by: Annotated[str, typer.Option(help="Who confirms, recorded.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Let the fleet take the current epoch, although it loses many endpoints."""
    from tarscascade.errors import StoreError

    with _open(db) as store:
        try:
            lineage = store.confirm_epoch(by or "store confirm-epoch", epoch)
        except StoreError as exc:
            fail(str(exc), EXIT_REFUSED)
    if as_json:
        print_json(_lineage_view(lineage))
        return
    _say_lineage(lineage)


def _sqlite_file(db: str) -> Path:
    path = _sqlite_path(db)
    if not path.exists():
        fail(f"no database file {path}", EXIT_REFUSED)
    return path


def _sqlite_path(db: str) -> Path:
    from tarscascade.errors import StoreError
    from tarscascade.store.engine import normalize_url

    try:
        url = normalize_url(db)
    except StoreError as exc:
        fail(str(exc), EXIT_USAGE)
    if url.get_backend_name() != "sqlite" or not url.database:
        fail(
            "backup and restore here are for SQLite; for MySQL/PostgreSQL use mysqldump / "
            "pg_dump, then `tarscascade store new-epoch` (see README: operations)",
            EXIT_USAGE,
        )
    return Path(url.database).absolute()


def _copy(source: Path, dest: Path) -> None:
    """SQLite's online backup: a consistent copy, taken page by page under its locks."""
    import sqlite3

    src = sqlite3.connect(source)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()

"""The one exception tree: split by whose fault it is and in which phase."""

from __future__ import annotations


class TarsCascadeError(Exception):
    """Base of every error this library raises on purpose."""


class ProtocolError(TarsCascadeError):
    """Bytes that do not follow the TARS protocol (ours or the peer's)."""


class DecodeError(ProtocolError):
    """Input could not be decoded: truncated, malformed, wrong type, missing field."""


class EncodeError(ProtocolError):
    """A value cannot be encoded (wrong Python type, out of range, too large)."""


class FrameError(ProtocolError):
    """A frame length outside the allowed range."""


class EndpointSyntaxError(TarsCascadeError, ValueError):
    """A TARS endpoint or object string that does not parse."""


class ValidationError(TarsCascadeError, ValueError):
    """A request that cannot be applied as given (an admin API answers 400); nothing changes."""


class TransportError(TarsCascadeError):
    """Socket-level failure."""


class ConnectError(TransportError):
    """Could not connect (refused, unreachable, connect timeout)."""


class ConnectionClosedError(TransportError):
    """The connection closed while a call was pending, or the channel is closed."""


class OverloadError(TransportError):
    """Too many calls pending on one channel."""


class CallTimeoutError(TarsCascadeError, TimeoutError):
    """A call got no answer within its timeout (TARS code -7)."""


class ServerError(TarsCascadeError):
    """The peer answered with a non-zero TARS framework return code."""

    def __init__(self, code: int, desc: str = "") -> None:
        super().__init__(
            f"TARS server error {code}: {desc}" if desc else f"TARS server error {code}"
        )
        self.code = code
        self.desc = desc


class NoEndpointError(TarsCascadeError):
    """No endpoint is known for an object (TARS code -10)."""


class NotSyncedError(TarsCascadeError):
    """A replica has no data yet and refuses to answer authoritatively."""


class StoreError(TarsCascadeError):
    """The database failed or refused an operation (connection, lock timeout, SQL error)."""


class NotFoundError(StoreError):
    """A write named a record that does not exist (a delete of a missing row)."""

    def __init__(self, keys: list[str], what: str | None = None) -> None:
        # ``what`` names the record as users write it (``endpoint "tcp -h h -p 1" of
        # A.B.Obj``); the keys are the store's and stay out of messages when it is given
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        super().__init__(f"not found: {what or shown}")
        self.keys = keys
        self.what = what


class ConflictError(StoreError):
    """A write collides with existing data (a duplicate key, an add of a record that exists)."""


class PreconditionFailedError(ConflictError):
    """A conditional write found its record changed after the revision it was based on."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this code knows: refuse rather than corrupt it."""


class ChangeLogTrimmedError(StoreError):
    """The changes asked for are no longer in the change log: reload instead of resuming."""

    def __init__(self, since: int, floor: int) -> None:
        super().__init__(
            f"changes after revision {since} were trimmed (log starts after {floor}); reload"
        )
        self.since = since
        self.floor = floor


class InvalidRecordError(TarsCascadeError, ValueError):
    """A record or key the store cannot hold (a field too long, a malformed key)."""


class EpochChangedError(StoreError):
    """The database now carries a different epoch (replaced or restored): start again."""


class RevisionRegressedError(EpochChangedError):
    """The database's revision is below one already seen: it was restored from a backup."""


class DatabaseFileError(StoreError):
    """The SQLite database file at the path is not the one open: writes would be lost."""


class DatabaseFileVanishedError(DatabaseFileError):
    """The SQLite database file was deleted: writes would go to a file nobody will read."""


class DatabaseFileReplacedError(DatabaseFileError):
    """Another file now sits at the SQLite database's path (it needs a restart to use)."""


class NoDatabaseError(StoreError):
    """No database where one is expected; creating one needs an explicit ``--init``."""

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

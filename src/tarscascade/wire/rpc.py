"""The RPC state machines, sans-IO: bytes in, events out; calls in, bytes out.

``ClientRpc`` numbers requests (never 0; wraps from 2**31-1 to 1), remembers which ids
are outstanding, and turns received bytes into :class:`Reply` (matched to a request),
:class:`Push` (request id 0: the server speaks first) or :class:`StrayReply` (an id we
no longer wait for: timed out or cancelled). ``ServerRpc`` turns received bytes into
:class:`RequestPacket` values and builds replies in the request's own protocol version:
a ResponsePacket for TARS, a RequestPacket-shaped reply for TUP (tars-protocol.md §2.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from tarscascade.errors import DecodeError, ProtocolError
from tarscascade.wire.codec import INT16, decode_value
from tarscascade.wire.framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from tarscascade.wire.packets import (
    NORMAL,
    ONEWAY,
    STATUS_PUSH_FUNC,
    STATUS_RESULT_CODE,
    STATUS_RESULT_DESC,
    TARS_VERSION,
    TUP_VERSIONS,
    RequestPacket,
    ResponsePacket,
)
from tarscascade.wire.struct import decode_struct, encode_struct

MAX_REQUEST_ID = 2**31 - 1
#: an empty UniAttribute (``map`` of size 0 at tag 0), what a TUP error reply carries:
#: TarsCpp and @tars/rpc write one, and @tars/rpc's client decodes the body of every
#: TUP reply, so an empty sBuffer would throw inside its socket handler
EMPTY_ATTRIBUTES = b"\x08\x0c"


@dataclass(frozen=True, slots=True)
class Reply:
    """A response matched to an outstanding request."""

    packet: ResponsePacket


@dataclass(frozen=True, slots=True)
class Push:
    """A server push (request id 0); the function name is in status ``TARS_FUNC``."""

    packet: ResponsePacket

    @property
    def func(self) -> str:
        return self.packet.status.get(STATUS_PUSH_FUNC, "")


@dataclass(frozen=True, slots=True)
class StrayReply:
    """A response to an id nobody waits for (late after a timeout, or bogus)."""

    packet: ResponsePacket


ClientEvent = Reply | Push | StrayReply


def decode_response(frame: bytes) -> ResponsePacket:
    """Decode a response frame payload; TUP replies (RequestPacket-shaped) are normalised."""
    version = decode_value(INT16, frame, 1, require=True)
    if version in TUP_VERSIONS:
        req = decode_struct(RequestPacket, frame)
        code = req.status.get(STATUS_RESULT_CODE, "0")
        if not _is_int32_text(code):
            raise DecodeError(f"bad {STATUS_RESULT_CODE} {code!r}")
        ret = int(code)
        return ResponsePacket(
            iVersion=req.iVersion,
            cPacketType=req.cPacketType,
            iRequestId=req.iRequestId,
            iMessageType=req.iMessageType,
            iRet=ret,
            sBuffer=req.sBuffer,
            status=req.status,
            sResultDesc=req.status.get(STATUS_RESULT_DESC, ""),
            context=req.context,
        )
    return decode_struct(ResponsePacket, frame)


def _is_int32_text(s: str) -> bool:
    digits = s[1:] if s[:1] == "-" else s
    return (
        0 < len(digits) <= 10
        and digits.isascii()
        and digits.isdigit()
        and (-(2**31) <= int(s) < 2**31)
    )


class ClientRpc:
    """Client side of one connection.

    After a protocol error the connection is broken (the stream cannot be re-synchronised)
    and the error is kept in ``failed``. When good replies preceded the bad frame in the
    same data, ``receive_data`` returns them instead of raising, so none is lost; the
    caller delivers them, sees ``failed`` and closes. Otherwise it raises.
    """

    __slots__ = ("_frames", "_last_id", "failed", "max_frame", "outstanding")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, first_id: int = 1) -> None:
        self.max_frame = max_frame
        self._frames = FrameDecoder(max_frame)
        self._last_id = max(0, min(first_id, MAX_REQUEST_ID) - 1)
        self.outstanding: set[int] = set()
        self.failed: ProtocolError | None = None

    def next_request_id(self) -> int:
        rid = self._last_id + 1
        if rid > MAX_REQUEST_ID:
            rid = 1
        # Skip ids still outstanding after a wrap (2**31 pending calls is impossible, so
        # this terminates quickly).
        while rid in self.outstanding:
            rid = rid + 1 if rid < MAX_REQUEST_ID else 1
        self._last_id = rid
        return rid

    def send_request(
        self,
        servant: str,
        func: str,
        body: bytes,
        *,
        timeout_ms: int = 3000,
        context: dict[str, str] | None = None,
        status: dict[str, str] | None = None,
        oneway: bool = False,
        version: int = TARS_VERSION,
        message_type: int = 0,
    ) -> tuple[int, bytes]:
        """Return ``(request_id, frame)``; a one-way call is not left outstanding."""
        rid = self.next_request_id()
        pkt = RequestPacket(
            iVersion=version,
            cPacketType=ONEWAY if oneway else NORMAL,
            iMessageType=message_type,
            iRequestId=rid,
            sServantName=servant,
            sFuncName=func,
            sBuffer=body,
            iTimeout=timeout_ms,
            context=context or {},
            status=status or {},
        )
        frame = encode_frame(encode_struct(pkt), self.max_frame)
        if not oneway:
            self.outstanding.add(rid)
        return rid, frame

    def forget(self, request_id: int) -> None:
        """Stop waiting for ``request_id`` (timed out or cancelled)."""
        self.outstanding.discard(request_id)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[ClientEvent]:
        if self.failed is not None:
            raise self.failed
        events: list[ClientEvent] = []
        try:
            frames = self._frames.feed(data)
        except ProtocolError as exc:
            self.failed = exc
            raise
        for frame in frames:
            try:
                pkt = decode_response(frame)
            except ProtocolError as exc:
                self.failed = exc
                if not events:
                    raise
                return events
            rid = pkt.iRequestId
            if rid == 0:
                events.append(Push(pkt))
            elif rid in self.outstanding:
                self.outstanding.discard(rid)
                events.append(Reply(pkt))
            else:
                events.append(StrayReply(pkt))
        self.failed = self._frames.error
        return events


class ServerRpc:
    """Server side of one connection."""

    __slots__ = ("_frames", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._frames = FrameDecoder(max_frame)

    @property
    def buffered(self) -> int:
        return self._frames.buffered

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[RequestPacket]:
        """Decode whole requests; raises ProtocolError (the connection must then close)."""
        reqs = [decode_struct(RequestPacket, f) for f in self._frames.feed(data)]
        if self._frames.error is not None:
            raise self._frames.error
        return reqs

    def build_reply(
        self,
        req: RequestPacket,
        ret: int,
        body: bytes = b"",
        desc: str = "",
        context: dict[str, str] | None = None,
    ) -> bytes | None:
        """Encode the reply to ``req`` in its protocol version; None for one-way requests."""
        if req.cPacketType == ONEWAY:
            return None
        return encode_frame(encode_reply(req, ret, body, desc, context), self.max_frame)


def encode_reply(
    req: RequestPacket,
    ret: int,
    body: bytes = b"",
    desc: str = "",
    context: dict[str, str] | None = None,
) -> bytes:
    if req.iVersion in TUP_VERSIONS:
        status: dict[str, str] = {}
        if ret:
            status[STATUS_RESULT_CODE] = str(ret)
        if desc:
            status[STATUS_RESULT_DESC] = desc
        return encode_struct(
            RequestPacket(
                iVersion=req.iVersion,
                cPacketType=NORMAL,
                iMessageType=req.iMessageType,
                iRequestId=req.iRequestId,
                sServantName=req.sServantName,
                sFuncName=req.sFuncName,
                sBuffer=body or EMPTY_ATTRIBUTES,
                iTimeout=req.iTimeout,
                context=context or {},
                status=status,
            )
        )
    return encode_struct(
        ResponsePacket(
            iVersion=req.iVersion,
            cPacketType=NORMAL,
            iRequestId=req.iRequestId,
            iMessageType=req.iMessageType,
            iRet=ret,
            sBuffer=body,
            status={},
            sResultDesc=desc,
            context=context or {},
        )
    )


def encode_push(func: str, body: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """A server push: request id 0, function name in status ``TARS_FUNC`` (C++ convention)."""
    pkt = ResponsePacket(
        iVersion=TARS_VERSION,
        cPacketType=NORMAL,
        iRequestId=0,
        iMessageType=0,
        iRet=0,
        sBuffer=body,
        status={STATUS_PUSH_FUNC: func},
    )
    return encode_frame(encode_struct(pkt), max_frame)


__all__ = [
    "ClientEvent",
    "ClientRpc",
    "ProtocolError",
    "Push",
    "Reply",
    "ServerRpc",
    "StrayReply",
    "decode_response",
    "encode_push",
    "encode_reply",
]

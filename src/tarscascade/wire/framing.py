"""Length-prefixed framing: a 4-byte big-endian length that counts itself, then the packet."""

from __future__ import annotations

from tarscascade.errors import FrameError
from tarscascade.wire.codec import pack_u32, unpack_u32

HEADER = 4
MIN_FRAME = 5  # TARS_NET_MIN_PACKAGE_SIZE
#: TarsGo's default; C++ allows 100 MiB. Configurable per connection.
DEFAULT_MAX_FRAME = 10 * 1024 * 1024


def encode_frame(payload: bytes | bytearray, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    total = len(payload) + HEADER
    if total < MIN_FRAME:
        raise FrameError("empty frame: a TARS frame carries at least one byte of packet")
    if total > max_frame:
        raise FrameError(f"frame of {total} bytes exceeds the maximum of {max_frame}")
    return pack_u32(total) + payload


class FrameDecoder:
    """Split a byte stream into frame payloads; bounded by ``max_frame``.

    A length outside ``[MIN_FRAME, max_frame]`` raises :class:`FrameError` as soon as the
    4 header bytes arrive, so an oversized frame is refused before it is buffered.
    """

    __slots__ = ("_buf", "error", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < MIN_FRAME:
            raise ValueError("max_frame too small")
        self.max_frame = max_frame
        self._buf = bytearray()
        #: set when a bad length followed good frames in one feed; raised on the next feed
        self.error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Return the complete frames' payloads; a bad length raises FrameError.

        Frames that precede a bad length in the same call are returned first (the error
        is kept in ``error`` and raised by the next call), so no good frame is lost.
        """
        if self.error is not None:
            raise self.error
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= HEADER:
            n = unpack_u32(buf, pos)[0]
            if n < MIN_FRAME or n > self.max_frame:
                err = FrameError(f"frame length {n} outside [{MIN_FRAME}, {self.max_frame}]")
                if not frames:
                    raise err
                self.error = err
                break
            if end - pos < n:
                break
            frames.append(bytes(buf[pos + HEADER : pos + n]))
            pos += n
        if pos:
            del buf[:pos]
        return frames

"""Length-prefixed frames over raw pipe file descriptors: the one framing of every sandbox channel.

A frame is a 4-byte little-endian length, then that many bytes. Raw ``os.read``/``os.write``
on file descriptors, no buffered file objects: the same helpers run in the trusted processes
and in the candidate's process, and a reader of the candidate bounds what it accepts, so a
hostile writer can waste only its own time. :func:`read_frame` blocks for one frame;
:class:`FrameReader` parses frames out of whatever non-blocking or batched reads brought.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct("<I")

#: Largest frame accepted from the candidate's process (bytes). Test values are small; a
#: bigger frame is treated as a broken channel.
MAX_FRAME = 16 * 1024**2


class ChannelClosed(EOFError):
    """The other end closed the pipe (or died) before a whole frame arrived."""


def frame(payload: bytes) -> bytes:
    """``payload`` with its length prefix."""
    return _HEADER.pack(len(payload)) + payload


class FrameReader:
    """Accumulates reads and returns the complete frames they bring, in order.

    :param max_size: largest frame accepted (None: no bound, for a trusted writer).
    """

    def __init__(self, max_size: int | None = MAX_FRAME) -> None:
        self.buffer = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the frames it completed.

        :raises ChannelClosed: a frame announces more than ``max_size`` bytes (raised as soon
            as its header arrives, before its payload is waited for).
        """
        self.buffer += data
        frames = []
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if self.max_size is not None and size > self.max_size:
                raise ChannelClosed(f"frame of {size} bytes exceeds the {self.max_size}-byte limit")
            if len(self.buffer) < _HEADER.size + size:
                break
            frames.append(bytes(self.buffer[_HEADER.size : _HEADER.size + size]))
            del self.buffer[: _HEADER.size + size]
        return frames


def write_frame(fd: int, payload: bytes) -> None:
    """Write one frame (blocking)."""
    view = memoryview(frame(payload))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise ChannelClosed("pipe closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_size: int = MAX_FRAME) -> bytes:
    """Read one frame (blocking).

    :raises ChannelClosed: end of file, or a frame larger than ``max_size``.
    """
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    if size > max_size:
        raise ChannelClosed(f"frame of {size} bytes exceeds the {max_size}-byte limit")
    return _read_exact(fd, size)


def write_json(fd: int, message: Any) -> None:
    """Write a JSON message as one frame."""
    write_frame(fd, json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def read_json(fd: int, max_size: int = MAX_FRAME) -> Any:
    """Read one JSON frame.

    :raises ChannelClosed: the pipe closed, or the frame is oversized or not JSON.
    """
    payload = read_frame(fd, max_size)
    try:
        return json.loads(payload.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise ChannelClosed(f"malformed frame: {exc}") from None

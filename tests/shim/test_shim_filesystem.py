"""The read-only filesystem's `descriptor.read`: short reads and end of file (table test through
the host function, with a real file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shim import filesystem, hostlink
from shim.codec import Ok
from shim.wasi_http import MAX_READ, InboundRequest, RequestState

READ = filesystem.IMPLS[filesystem.T + "[method]descriptor.read"]
SIZE = MAX_READ + 100


class _NoSink:
    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None: ...
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def finish(self) -> None: ...


@pytest.fixture
def file_rep(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "data.bin").write_bytes(bytes(i % 251 for i in range(SIZE)))
    state = RequestState(InboundRequest("GET", "/", "http", "h", [], lambda n: b""), _NoSink(),
                         lambda stream, data: None)
    hostlink.CURRENT.state = state
    try:
        yield state.new("descriptor", filesystem.Descriptor(tmp_path, "data.bin"))
    finally:
        hostlink.CURRENT.state = None


@pytest.mark.parametrize(("length", "offset", "size", "eof"), [
    (10, 0, 10, False),
    (SIZE, 0, MAX_READ, False),  # capped: more to come, not the end
    (200, MAX_READ, 100, True),
    (100, MAX_READ, 100, False),  # exactly the rest: the next read says end of file
    (10, SIZE, 0, True),
])
def test_read_lengths_and_end_of_file(file_rep: int, length: int, offset: int, size: int, eof: bool) -> None:
    result = READ(file_rep, length, offset)
    assert isinstance(result, Ok)
    data, at_end = result.value
    assert (len(data), at_end) == (size, eof)
    assert data == bytes(i % 251 for i in range(offset, offset + size))

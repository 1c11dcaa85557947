"""list<u8> through wasmtime's C value arrays: lowered then lifted back, across the bulk-copy
chunk size, from several threads at once (scratch arrays are never shared by two copies at once)."""

from __future__ import annotations

import os
import threading
from ctypes import byref

import pytest
from wasmtime import _ffi as ffi

from shim import codec

CHUNK = codec._CHUNK


def roundtrip(data: bytes | bytearray | memoryview | list[int]) -> bytes:
    c = ffi.wasmtime_component_val_t()
    codec.Bytes().lower(None, data, c)
    assert c.kind == ffi.WASMTIME_COMPONENT_LIST.value
    assert c.of.list.size == len(data)
    if len(data):
        first = c.of.list.data[0]
        assert (first.kind, first.of.u8) == (ffi.WASMTIME_COMPONENT_U8.value, bytes(data)[0])
    out: bytes = codec.Bytes().lift(None, c)
    assert c.of.list.size == 0  # lifting consumed the C list
    ffi.wasmtime_component_val_delete(byref(c))
    return out


@pytest.mark.parametrize("size", [0, 1, 255, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_shim_codec_bytes_roundtrip(size: int) -> None:
    data = os.urandom(size)
    assert roundtrip(data) == data


@pytest.mark.parametrize("kind", [bytearray, memoryview, list])
def test_shim_codec_bytes_accepts_byte_sequences(kind: type) -> None:
    data = os.urandom(1000)
    assert roundtrip(kind(data)) == data


def test_shim_codec_bytes_from_many_threads() -> None:
    failures: list[int] = []

    def work(seed: int) -> None:
        for _ in range(50):
            data = bytes([seed]) * 5000 + os.urandom(3000)
            if roundtrip(data) != data:
                failures.append(seed)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(codec._SCRATCH) <= codec._POOL_MAX  # idle scratch arrays are bounded

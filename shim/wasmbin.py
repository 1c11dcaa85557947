"""Reading the top level of a WebAssembly component binary: enough for `bytestrings`.

It reads the import declarations (type, import and alias sections, with instance types in full:
their value types, function types and exports), the index spaces they create, and the export
names. Core modules and nested components are skipped by their section sizes. A form it does not
know raises `Unsupported`: the caller then leaves the component alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

PREAMBLE = b"\0asm\x0d\x00\x01\x00"
_LIST = 0x70
_U8 = 0x7D
STRING = 0x73
COMPONENT_SECTION, INSTANCE_SECTION, ALIAS_SECTION, TYPE_SECTION = 4, 5, 6, 7
IMPORT_SECTION, EXPORT_SECTION = 10, 11

# component-level sorts (a core sort is 0x00 followed by its own byte)
_CORE, FUNC, _VALUE, _TYPE, _COMPONENT, INSTANCE = range(6)


class Unsupported(Exception):
    """Something this parser does not read; the component is then used as it is."""


class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise Unsupported("unexpected end of section")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise Unsupported("LEB128 too long")

    def name(self) -> str:
        n = self.u32()
        if self.pos + n > self.end:
            raise Unsupported("name past the end")
        s = bytes(self.data[self.pos:self.pos + n]).decode("utf-8", "replace")
        self.pos += n
        return s

    def vec(self) -> range:
        return range(self.u32())


def leb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# ---------------------------------------------------------------- instance types

ValRef = tuple[int | None, int | None]  # a valtype: (local type index, None) or (None, primitive)


class Kind(Enum):
    BYTES = "list<u8>"
    FUNC = "func"
    VALUE = "value"            # any other value type, or an exported (named) type
    OPAQUE = "opaque"          # aliased from outside, or a component/instance/resource type


@dataclass
class Local:
    """One entry of an instance type's type index space."""

    kind: Kind
    refs: list[int] = field(default_factory=list)
    first: int = 0             # a defined value type's opcode (0x6a: result<refs[0], refs[1]>)
    params: list[tuple[bytes, ValRef]] = field(default_factory=list)   # func: (encoded name, type)
    result: ValRef | None = None                                       # func: its result, if any


@dataclass
class FuncExport:
    name: str
    type_index: int


@dataclass
class InstanceType:
    count_at: int              # absolute offset of the declaration count
    count: int
    end: int                   # absolute offset just past the last declaration
    locals: list[Local] = field(default_factory=list)
    funcs: list[FuncExport] = field(default_factory=list)
    type_exports: set[str] = field(default_factory=set)


def _valtype(r: _Reader) -> ValRef:
    if r.pos >= r.end:
        raise Unsupported("unexpected end of section")
    b = r.data[r.pos]
    if b & 0x80 or b < 0x40:   # an s33 >= 0: a type index; a negative one-byte s33: a primitive
        return r.u32(), None
    r.pos += 1
    return None, b


def _add(vt: ValRef, refs: list[int]) -> ValRef:
    if vt[0] is not None:
        refs.append(vt[0])
    return vt


def _defvaltype(r: _Reader, first: int, refs: list[int]) -> list[int]:
    """The rest of a defvaltype whose first byte was `first`: the primitives it names directly
    (its type indices go to `refs`)."""
    prims: list[int] = []

    def val() -> None:
        _, prim = _add(_valtype(r), refs)
        if prim is not None:
            prims.append(prim)

    def opt_val() -> None:
        if r.byte():
            val()

    if first == 0x72:                            # record
        for _ in r.vec():
            r.name()
            val()
    elif first == 0x71:                          # variant
        for _ in r.vec():
            r.name()
            opt_val()
            if r.byte() != 0x00:
                raise Unsupported("variant case refines")
    elif first in (0x70, 0x6B):                  # list, option
        val()
    elif first == 0x67:                          # fixed-size list
        val()
        r.u32()
    elif first == 0x6F:                          # tuple
        for _ in r.vec():
            val()
    elif first in (0x6E, 0x6D):                  # flags, enum
        for _ in r.vec():
            r.name()
    elif first == 0x6A:                          # result
        opt_val()
        opt_val()
    elif first in (0x69, 0x68):                  # own, borrow
        refs.append(r.u32())
    elif 0x73 <= first <= 0x7F or first == 0x64:  # a primitive as a type of its own
        prims.append(first)
    else:
        raise Unsupported(f"value type 0x{first:02x}")
    return prims


def _functype(r: _Reader) -> Local:
    f = Local(Kind.FUNC)
    for _ in r.vec():
        at = r.pos
        r.name()
        label = bytes(r.data[at:r.pos])
        f.params.append((label, _add(_valtype(r), f.refs)))
    tag = r.byte()
    if tag == 0x00:
        f.result = _add(_valtype(r), f.refs)
    elif tag != 0x01 or r.byte() != 0x00:
        raise Unsupported("named results")
    return f


def _externdesc(r: _Reader) -> tuple[int, int | None]:
    """(sort, type index or None)."""
    kind = r.byte()
    if kind == 0x00:
        if r.byte() != 0x11:
            raise Unsupported("core extern other than a module")
        r.u32()
        return _CORE, None
    if kind in (0x01, 0x04, 0x05):
        return kind, r.u32()
    if kind == 0x02:                            # value bound
        if r.byte() == 0x00:
            r.u32()
        else:
            _valtype(r)
        return _VALUE, None
    if kind == 0x03:                            # type bound: eq i | sub resource
        return _TYPE, (r.u32() if r.byte() == 0x00 else None)
    raise Unsupported(f"externdesc 0x{kind:02x}")


def _exportname(r: _Reader) -> str:
    tag = r.byte()
    if tag != 0x00:
        raise Unsupported(f"export name form 0x{tag:02x}")
    return r.name()


def _sort(r: _Reader) -> int:
    s = r.byte()
    if s == 0x00:
        r.byte()
        return _CORE
    if s > INSTANCE:
        raise Unsupported(f"sort 0x{s:02x}")
    return s


def _alias(r: _Reader) -> int:
    """An alias; returns its sort."""
    sort = _sort(r)
    target = r.byte()
    if target in (0x00, 0x01):                  # an export of a component or core instance
        r.u32()
        r.name()
    elif target == 0x02:                        # outer
        r.u32()
        r.u32()
    else:
        raise Unsupported(f"alias target 0x{target:02x}")
    return sort


def _deftype(r: _Reader) -> InstanceType | None:
    """Read one deftype; an instance type is returned with its layout, anything else skipped."""
    first = r.byte()
    if first == 0x42:
        return _instancetype(r)
    if first == 0x41:
        for _ in r.vec():
            if r.data[r.pos] == 0x03:               # an import declaration
                r.pos += 1
                _exportname(r)
                _externdesc(r)
            else:
                _instancedecl(r, None)
        return None
    if first == 0x40:
        _functype(r)
    elif first == 0x3F:
        if r.byte() != 0x7F:
            raise Unsupported("resource representation")
        if r.byte():
            r.u32()
    else:
        _defvaltype(r, first, [])
    return None


def _instancetype(r: _Reader) -> InstanceType:
    at = r.pos
    count = r.u32()
    it = InstanceType(at, count, -1)
    for _ in range(count):
        _instancedecl(r, it)
    it.end = r.pos
    return it


def _instancedecl(r: _Reader, it: InstanceType | None) -> None:
    tag = r.byte()
    if tag == 0x00:
        raise Unsupported("core type in an instance type")
    if tag == 0x01:
        first = r.data[r.pos]
        if first == 0x40:
            r.pos += 1
            local = _functype(r)
        elif first in (0x41, 0x42, 0x3F):
            _deftype(r)
            local = Local(Kind.OPAQUE)
        else:
            r.pos += 1
            local = Local(Kind.VALUE, first=first)
            if _defvaltype(r, first, local.refs) == [_U8] and first == _LIST:
                local.kind = Kind.BYTES
        if it is not None:
            it.locals.append(local)
    elif tag == 0x02:
        if _alias(r) == _TYPE and it is not None:
            it.locals.append(Local(Kind.OPAQUE))
    elif tag == 0x04:
        name = _exportname(r)
        sort, idx = _externdesc(r)
        if it is None:
            return
        if sort == _TYPE:      # a resource, or a named value type: the same type under a new index
            it.locals.append(Local(Kind.VALUE, [] if idx is None else [idx]))
            it.type_exports.add(name)
        elif sort == FUNC and idx is not None:
            it.funcs.append(FuncExport(name, idx))
    else:
        raise Unsupported(f"instance declaration 0x{tag:02x}")


# ---------------------------------------------------------------- sections


@dataclass
class _Section:
    id: int
    header: int     # offset of the section id byte
    start: int      # content start
    end: int        # content end


def sections(wasm: bytes, first: int = len(PREAMBLE)) -> Iterator[_Section]:
    r = _Reader(wasm, first)
    while r.pos < len(wasm):
        header = r.pos
        sid = r.byte()
        size = r.u32()
        start = r.pos
        r.pos += size
        if r.pos > len(wasm):
            raise Unsupported("section past the end of the file")
        yield _Section(sid, header, start, r.pos)


@dataclass
class Component:
    """What the wrapper needs of the guest: its imports (declared first, in the prefix of type,
    import and alias sections), the index spaces they make, and its exports."""

    types: list[InstanceType | None] = field(default_factory=list)
    instances: list[str | None] = field(default_factory=list)    # an imported instance's name
    instance_types: dict[int, int] = field(default_factory=dict)  # instance -> its type index
    funcs: int = 0
    imports: list[tuple[str, int, int]] = field(default_factory=list)  # (name, sort, index)
    exports: list[tuple[str, int]] = field(default_factory=list)       # (name, sort)
    prefix_end: int = 0

    def add(self, sort: int) -> int:
        """A new index of `sort` (a function, instance or type); returns it."""
        if sort == FUNC:
            self.funcs += 1
            return self.funcs - 1
        if sort == INSTANCE:
            self.instances.append(None)
            return len(self.instances) - 1
        if sort == _TYPE:
            self.types.append(None)
            return len(self.types) - 1
        raise Unsupported("a component, core or value among the imports")


def _read_type(r: _Reader, c: Component) -> None:
    c.types.append(_deftype(r))


def _read_import(r: _Reader, c: Component) -> None:
    name = _exportname(r)
    sort, idx = _externdesc(r)
    index = c.add(sort)
    if sort == INSTANCE and idx is not None:
        c.instances[index] = name
        c.instance_types[index] = idx
    c.imports.append((name, sort, index))


def _read_alias(r: _Reader, c: Component) -> None:
    c.add(_alias(r))


def _read_export(r: _Reader, c: Component) -> None:
    name = _exportname(r)
    sort = _sort(r)
    r.u32()
    if r.byte():
        _externdesc(r)
    if sort not in (FUNC, INSTANCE):
        raise Unsupported(f"export {name!r} of sort {sort}")
    c.exports.append((name, sort))


_PREFIX_READERS: dict[int, Callable[[_Reader, Component], None]] = {
    TYPE_SECTION: _read_type, IMPORT_SECTION: _read_import, ALIAS_SECTION: _read_alias}


def read(wasm: bytes) -> Component:
    """The guest's import prefix and exports; `Unsupported` when the component has another shape
    (an import after its first definition, an import of a component or core module, ...)."""
    if not wasm.startswith(PREAMBLE):
        raise Unsupported("not a component")
    c = Component()
    in_prefix = True
    for sec in sections(wasm):
        r = _Reader(wasm, sec.start, sec.end)
        if in_prefix and sec.id not in (0, *_PREFIX_READERS):
            in_prefix, c.prefix_end = False, sec.header
        if in_prefix and sec.id in _PREFIX_READERS:
            for _ in r.vec():
                _PREFIX_READERS[sec.id](r, c)
        elif sec.id == IMPORT_SECTION:
            raise Unsupported("an import after the first definition")
        elif sec.id == EXPORT_SECTION:
            for _ in r.vec():
                _read_export(r, c)
    if in_prefix:
        raise Unsupported("nothing but imports")
    return c



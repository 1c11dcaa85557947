"""Wrapping a wasi:http component so the bytes of its streams cross wasmtime's C API in bulk.

wasmtime 50's C API hands a `list<u8>` to and from a host function as one 32-byte value per
byte, converting every byte between guest memory, `Val` and the C value (about 25 ns per byte
each way: most of a 1 MiB echo). A `string` crosses as one byte vector. So the guest is nested,
unchanged, in a wrapper component next to a small adapter component written here in the text
format. The adapter exports the `wasi:io/streams` the guest imports: its byte functions (`read`,
`blocking-read`, `write`, `blocking-write-and-flush`) call host functions that take or return
the bytes as a `latin1+utf16` string (`<function>-latin1`, appended to the host's streams
interface), every other function is the host's own. Between guest and adapter, wasmtime copies
a `list<u8>` with a compiled memcpy; between adapter and host, a latin-1 string crosses as one
vector, which `codec.Latin1` turns into `bytes` and back.

Why an adapter rather than retyping the guest's imports: a latin-1 string must start on an even
address (guests write from any offset) and the host shrinks the buffer it allocated for one with
a second `realloc` call (componentize-py's realloc panics on that). The adapter's own memory and
allocator meet both; the guest sees exactly the calls it would see from the host.

The wrapper re-declares the guest's imports (its leading type, import and alias sections, copied
with the latin-1 functions appended to the streams instance type), instantiates the adapter and
the guest, and re-exports the guest's exports. A guest this does not understand (see `wasmbin`)
is run as it is: still correct, only slower.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import wasmtime

from shim import wasmbin

STREAMS_PREFIX = "wasi:io/streams@0.2."
Edits = dict[int, tuple[int, bytes]]   # absolute offset -> (bytes replaced, new bytes)

@dataclass(frozen=True)
class Plan:
    """What `analyse` found: the component's exports, and how to build its wrapper."""

    wasm: bytes
    exports: tuple[str, ...]
    functions: Mapping[str, str] = field(default_factory=dict)
    # ^ "import#<function>-latin1" the host must define -> "import#<function>" it stands for
    edits: Mapping[int, tuple[int, bytes]] = field(default_factory=dict)  # in the import prefix
    prefix_end: int = 0
    tail: bytes = b""
    variant: str = ""  # names the wrapper in artifact cache keys: changes with anything but the guest

    def apply(self) -> bytes:
        """The wrapper component (the original when there is nothing to adapt)."""
        if not self.functions:
            return self.wasm
        return _rewrite(self.wasm[:self.prefix_end], self.edits) + self.tail


def analyse(wasm: bytes) -> Plan:
    """How to wrap `wasm` so its stream bytes cross in bulk; an empty plan when that cannot be
    done safely (no wasi:io/streams import, or a form this parser does not read)."""
    try:
        return _plan(wasm)
    except (wasmbin.Unsupported, IndexError, UnicodeDecodeError):
        try:
            exports = tuple(n for n, _ in wasmbin.read(wasm).exports)
        except (wasmbin.Unsupported, IndexError, UnicodeDecodeError):
            exports = ()
        return Plan(wasm, exports)


# ---------------------------------------------------------------- the plan

LATIN1 = "-latin1"  # suffix of the host functions the adapter calls: "<function>-latin1"

_READS = ("[method]input-stream.read", "[method]input-stream.blocking-read")
_WRITES = ("[method]output-stream.write", "[method]output-stream.blocking-write-and-flush")

# wasi:io/streams@0.2.x in the adapter's text format: (parameters, result) per function
_ERR = "(error $se)"
_IN, _OUT = '(param "self" (borrow $in))', '(param "self" (borrow $out))'
_SIGNATURES: dict[str, tuple[str, str]] = {
    "[method]input-stream.read": (f'{_IN} (param "len" u64)', f"(result (list u8) {_ERR})"),
    "[method]input-stream.skip": (f'{_IN} (param "len" u64)', f"(result u64 {_ERR})"),
    "[method]input-stream.subscribe": (f'{_IN}', "(own $pl)"),
    "[method]output-stream.check-write": (f'{_OUT}', f"(result u64 {_ERR})"),
    "[method]output-stream.write": (f'{_OUT} (param "contents" (list u8))', f"(result {_ERR})"),
    "[method]output-stream.flush": (f'{_OUT}', f"(result {_ERR})"),
    "[method]output-stream.subscribe": (f'{_OUT}', "(own $pl)"),
    "[method]output-stream.write-zeroes": (f'{_OUT} (param "len" u64)', f"(result {_ERR})"),
    "[method]output-stream.splice": (f'{_OUT} (param "src" (borrow $in)) (param "len" u64)',
                                     f"(result u64 {_ERR})"),
}
for _blocking, _same in (("blocking-read", "read"), ("blocking-skip", "skip"),
                     ("blocking-write-and-flush", "write"), ("blocking-flush", "flush"),
                     ("blocking-write-zeroes-and-flush", "write-zeroes"), ("blocking-splice", "splice")):
    _res = "input-stream" if _same in ("read", "skip") else "output-stream"
    _SIGNATURES[f"[method]{_res}.{_blocking}"] = _SIGNATURES[f"[method]{_res}.{_same}"]


def _sig(name: str, latin1: bool = False) -> str:
    params, result = _SIGNATURES[name]
    text = f"{params} (result {result})"
    return text.replace("(list u8)", "string") if latin1 else text


def _plan(wasm: bytes) -> Plan:
    c = wasmbin.read(wasm)
    streams = [i for i, n in enumerate(c.instances) if n and n.startswith(STREAMS_PREFIX)]
    if len(streams) != 1:
        raise wasmbin.Unsupported("no (or more than one) wasi:io/streams@0.2 import")
    s = streams[0]
    it = c.types[c.instance_types[s]]
    if it is None or not {"input-stream", "output-stream", "error", "stream-error"} <= it.type_exports:
        raise wasmbin.Unsupported("an unexpected wasi:io/streams type")
    names = [e.name for e in it.funcs]
    if any(n not in _SIGNATURES for n in names):
        raise wasmbin.Unsupported("a wasi:io/streams function this adapter does not know")
    wrapped = [n for n in names if n in _READS or n in _WRITES]
    if not wrapped:
        raise wasmbin.Unsupported("no byte functions to adapt")
    polls = [i for i, n in enumerate(c.instances) if n and n.startswith("wasi:io/poll@0.2.")]
    if any(n.endswith(".subscribe") for n in names) and len(polls) != 1:
        raise wasmbin.Unsupported("subscribe without one wasi:io/poll@0.2 import")
    edits: Edits = {}
    _add_latin1_functions(it, wrapped, edits)
    adapter = _adapter(names, wrapped, bool(polls))
    tail = _tail(wasm, c, s, polls[0] if polls else None, adapter)
    stream_name = c.instances[s] or ""
    functions = {f"{stream_name}#{n}{LATIN1}": f"{stream_name}#{n}" for n in wrapped}
    own = hashlib.sha256(adapter + repr(sorted(edits.items())).encode()).hexdigest()[:16]
    return Plan(wasm, tuple(n for n, _ in c.exports), functions, edits, c.prefix_end, tail,
                f"streams-adapter-{own}")


def _add_latin1_functions(it: wasmbin.InstanceType, wrapped: list[str], edits: Edits) -> None:
    """Append to the streams instance type a `string` type and, per wrapped function, a copy
    taking or returning that string: "<name>-latin1". Appending keeps every index valid."""
    loc = it.locals
    by_name = {e.name: e for e in it.funcs}
    string_index = len(loc)
    added = [b"\x01" + bytes((wasmbin.STRING,))]
    exports: list[bytes] = []
    for name in wrapped:
        f = loc[by_name[name].type_index]
        subst = {i: string_index for i, x in enumerate(loc) if x.kind == "bytes"}
        if name in _READS:
            res = f.result[0] if f.result else None
            r = loc[res] if res is not None else None
            if r is None or r.first != 0x6A or len(r.refs) != 2 or loc[r.refs[0]].kind != "bytes":
                raise wasmbin.Unsupported(f"{name}: not result<list<u8>, E>")
            subst[res] = string_index + len(added)  # type: ignore[index]
            added.append(b"\x01\x6a\x01" + wasmbin.leb(string_index) + b"\x01" + wasmbin.leb(r.refs[1]))
        ftype = string_index + len(added)
        added.append(b"\x01" + _encode_functype(f, subst))
        raw = (name + LATIN1).encode()
        exports.append(b"\x04\x00" + wasmbin.leb(len(raw)) + raw + b"\x01" + wasmbin.leb(ftype))
    edits[it.count_at] = (len(wasmbin.leb(it.count)), wasmbin.leb(it.count + len(added) + len(exports)))
    edits[it.end] = (0, b"".join(added + exports))


def _encode_functype(f: wasmbin.Local, subst: Mapping[int, int]) -> bytes:
    def val(vt: wasmbin.ValRef) -> bytes:
        idx, prim = vt
        return bytes((prim or 0,)) if idx is None else wasmbin.leb(subst.get(idx, idx))

    out = bytearray(b"\x40")
    out += wasmbin.leb(len(f.params))
    for label, vt in f.params:
        out += label + val(vt)
    out += b"\x01\x00" if f.result is None else b"\x00" + val(f.result)
    return bytes(out)


def _section(sid: int, body: bytes) -> bytes:
    return bytes((sid,)) + wasmbin.leb(len(body)) + body


def _name(s: str) -> bytes:
    raw = s.encode()
    return wasmbin.leb(len(raw)) + raw


def _tail(wasm: bytes, c: wasmbin.Component, streams: int, poll: int | None, adapter: bytes) -> bytes:
    """After the guest's own import declarations: the adapter and the guest as nested
    components, the adapter instantiated with the host's streams (and poll), the guest with its
    imports but the adapter for streams, and the guest's exports re-exported."""
    adapter_at, guest_at = len(c.instances), len(c.instances) + 1
    args = [_name("streams") + bytes((wasmbin.INSTANCE,)) + wasmbin.leb(streams)]
    if poll is not None:
        args.append(_name("poll") + bytes((wasmbin.INSTANCE,)) + wasmbin.leb(poll))
    adapter_inst = b"\x00" + wasmbin.leb(0) + wasmbin.leb(len(args)) + b"".join(args)
    guest_args = [_name(name) + bytes((sort,))
                  + wasmbin.leb(adapter_at if (sort, idx) == (wasmbin.INSTANCE, streams) else idx)
                  for name, sort, idx in c.imports]
    guest_inst = b"\x00" + wasmbin.leb(1) + wasmbin.leb(len(guest_args)) + b"".join(guest_args)
    aliases, exports = [], []
    next_index = {wasmbin.INSTANCE: guest_at + 1, wasmbin.FUNC: c.funcs}
    for name, sort in c.exports:
        aliases.append(bytes((sort, 0x00)) + wasmbin.leb(guest_at) + _name(name))
        exports.append(b"\x00" + _name(name) + bytes((sort,)) + wasmbin.leb(next_index[sort]) + b"\x00")
        next_index[sort] += 1
    return b"".join([
        _section(4, adapter),
        _section(4, wasm),
        _section(5, wasmbin.leb(2) + adapter_inst + guest_inst),
        _section(6, wasmbin.leb(len(aliases)) + b"".join(aliases)),
        _section(11, wasmbin.leb(len(exports)) + b"".join(exports)),
    ])


def _rewrite(wasm: bytes, edits: Mapping[int, tuple[int, bytes]]) -> bytes:
    """Apply byte-range edits and re-encode the sizes of the sections they fall in."""
    out = bytearray(wasm[:len(wasmbin.PREAMBLE)])
    offsets = sorted(edits)
    k = 0
    for sec in wasmbin.sections(wasm):
        body = bytearray()
        pos = sec.start
        # `<=`: an insertion at the very end of a section belongs to it (no edit starts on the
        # next section's header)
        while k < len(offsets) and offsets[k] <= sec.end:
            at = offsets[k]
            length, new = edits[at]
            body += wasm[pos:at]
            body += new
            pos = at + length
            k += 1
        body += wasm[pos:sec.end]
        out.append(sec.id)
        out += wasmbin.leb(len(body))
        out += body
    return bytes(out)


# ---------------------------------------------------------------- the adapter component

_LIBC = """
  (core module $libc
    (memory (export "memory") 1)
    (global (export "heap") (mut i32) (i32.const 16))
    ;; a bump allocator reset by every call; a shrink stays in place (the host writes a latin-1
    ;; string into a buffer sized for its UTF-8 and then shrinks it)
    (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new i32)
          (result i32)
      (local $p i32) (local $top i32)
      (if (i32.and (i32.ne (local.get $old) (i32.const 0)) (i32.le_u (local.get $new) (local.get $old_size)))
        (then (return (local.get $old))))
      (local.set $p (i32.and (i32.add (global.get 0) (i32.const 7)) (i32.const -8)))
      (global.set 0 (i32.add (local.get $p) (local.get $new)))
      (local.set $top (i32.mul (memory.size) (i32.const 65536)))
      (if (i32.gt_u (global.get 0) (local.get $top))
        (then (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (global.get 0) (local.get $top))
                                                            (i32.const 65535)) (i32.const 16)))
                          (i32.const -1))
                (then unreachable))))
      (if (local.get $old) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
"""


def _adapter(names: list[str], wrapped: list[str], poll: bool) -> bytes:
    """The adapter component, in the text format: it exports the streams interface the guest
    imports; byte functions go through latin-1 host functions, the rest pass straight through."""

    pl = ""
    if poll:
        pl = '(import "poll" (instance $poll (export "pollable" (type (sub resource)))))\n' \
             '(alias export $poll "pollable" (type $pollable))\n'
    decl = ['(export "input-stream" (type $in (sub resource)))',
            '(export "output-stream" (type $out (sub resource)))',
            '(export "error" (type $err (sub resource)))',
            '(type $se0 (variant (case "last-operation-failed" (own $err)) (case "closed")))',
            '(export "stream-error" (type $se (eq $se0)))']
    if poll:
        decl.append("(alias outer $adapter $pollable (type $pl))")
    for n in names:
        if n not in wrapped:
            decl.append(f'(export "{n}" (func {_sig(n)}))')
    for n in wrapped:
        decl.append(f'(export "{n}{LATIN1}" (func {_sig(n, latin1=True)}))')
    body = [f"(component $adapter\n{pl}(import \"streams\" (instance $s\n  " + "\n  ".join(decl) + "))",
            '(alias export $s "input-stream" (type $in0))',
            '(alias export $s "output-stream" (type $out0))',
            '(alias export $s "error" (type $err0))',
            # exported before use: an exported function may only name exported types
            '(export $in "input-stream" (type $in0))',
            '(export $out "output-stream" (type $out0))',
            '(export $err "error" (type $err0))',
            '(type $se-def (variant (case "last-operation-failed" (own $err)) (case "closed")))',
            '(export $se "stream-error" (type $se-def))']
    if poll:
        body.append('(export $pl "pollable" (type $pollable))')
    body.append(_LIBC)
    host, core, lifts = [], [], []
    for k, n in enumerate(wrapped):
        read = n in _READS
        body.append(f'(core func $h{k} (canon lower (func $s "{n}{LATIN1}") '
                    f'(memory (core memory $libc "memory")) '
                    f'(realloc (core func $libc "realloc")) string-encoding=latin1+utf16))')
        host.append(f'(export "{k}" (func $h{k}))')
        # the borrowed `self` is lent on to the host, then dropped: an export must end its borrows
        if read:
            core.append(f'(import "host" "{k}" (func $h{k} (param i32 i64 i32)))')
            core.append(f'(func (export "{k}") (param i32 i64) (result i32) '
                        f'(global.set $heap (i32.const 16)) '
                        f'(call $h{k} (local.get 0) (local.get 1) (i32.const 0)) '
                        f'(call $drop_in (local.get 0)) (i32.const 0))')
        else:
            core.append(f'(import "host" "{k}" (func $h{k} (param i32 i32 i32 i32)))')
            core.append(f'(func (export "{k}") (param i32 i32 i32) (result i32) '
                        f'(call $h{k} (local.get 0) (local.get 1) (local.get 2) (i32.const 0)) '
                        f'(call $drop_out (local.get 0)) (global.set $heap (i32.const 16)) (i32.const 0))')
        lifts.append(f'(func $w{k} {_sig(n)} (canon lift (core func $m "{k}") '
                     f'(memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))')
        lifts.append(f'(export "{n}" (func $w{k}))')
    body.append('(core func $drop_in (canon resource.drop $in))')
    body.append('(core func $drop_out (canon resource.drop $out))')
    host += ['(export "drop-in" (func $drop_in))', '(export "drop-out" (func $drop_out))']
    core += ['(import "host" "drop-in" (func $drop_in (param i32)))',
             '(import "host" "drop-out" (func $drop_out (param i32)))']
    body.append(f'(core instance $host {" ".join(host)})')
    imports = [i for i in core if i.startswith("(import")]
    funcs = [f for f in core if not f.startswith("(import")]
    body.append('(core module $m (import "libc" "heap" (global $heap (mut i32)))\n  '
                + "\n  ".join(imports + funcs) + ")")
    body.append('(core instance $m (instantiate $m (with "libc" (instance $libc)) '
                '(with "host" (instance $host))))')
    body.extend(lifts)
    for n in names:
        if n not in wrapped:
            alias = "$p" + str(names.index(n))
            body.append(f'(alias export $s "{n}" (func {alias}))')
            # re-typed with this component's exported types, the only ones an export may name
            body.append(f'(export "{n}" (func {alias}) (func {_sig(n)}))')
    body.append(")")
    return bytes(wasmtime.wat2wasm("\n".join(body)))

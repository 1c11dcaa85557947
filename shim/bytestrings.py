"""Wrapping a wasi:http component so the bytes of its streams cross wasmtime's C API in bulk.

wasmtime 50's C API hands a `list<u8>` to and from a host function as one 32-byte value per
byte, converting every byte between guest memory, `Val` and the C value (about 25 ns per byte
each way: most of a 1 MiB echo). A `string` crosses as one byte vector. So the guest is nested,
unchanged, in a wrapper component next to a small adapter component written here in the text
format. The adapter exports the `wasi:io/streams` the guest imports: its byte functions (`read`,
`blocking-read`, `write`, `blocking-write-and-flush`) call host functions `<function>-hex`
(appended to the host's streams interface) that carry the bytes as a string of hex digits;
every other function is the host's own. Between guest and adapter wasmtime copies a `list<u8>`
with compiled code, the adapter converts to and from hex in compiled code too, and
`codec.Hex` converts on the host side with `binascii`.

Why hex: it is valid UTF-8 (what the C API carries) for any bytes, and the cheapest text for
both sides. Latin-1 strings were tried first and rejected: lifting one traps unless it starts
at an even address, and lowering one calls the guest's realloc a second time to shrink, which
componentize-py's realloc panics on; they also cost about 20 ms per MiB in transcoding.
Why an adapter rather than retyping the guest's imports: the guest sees exactly the calls it
would see from the host, whatever its allocator does.

The wrapper re-declares the guest's imports (its leading type, import and alias sections, copied
with the hex functions appended to the streams instance type), instantiates the adapter and the
guest, and re-exports the guest's exports. A guest this does not understand (see `wasmbin`) is
run as it is: still correct, only slower.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

import wasmtime

from shim import wasmbin

STREAMS_PREFIX = "wasi:io/streams@0.2."
Edits = dict[int, tuple[int, bytes]]   # absolute offset -> (bytes replaced, new bytes)
_RESULT = 0x6A  # the result<T, E> value type



@dataclass(frozen=True)
class Plan:
    """What `analyse` found: the component's exports, and how to build its wrapper."""

    wasm: bytes
    exports: tuple[str, ...]
    functions: Mapping[str, str] = field(default_factory=dict)
    # ^ "import#<function>-hex" the host must define -> "import#<function>" it stands for
    variant: str = ""  # names the wrapper in artifact cache keys: changes with anything but the guest
    edits: Mapping[int, tuple[int, bytes]] = field(default_factory=dict)  # in the import prefix
    parts: _Parts | None = None

    def apply(self) -> bytes:
        """The wrapper component (the original when there is nothing to adapt). Built only
        here: on an artifact cache hit nobody asks, and the guest is not copied."""
        if self.parts is None:
            return self.wasm
        prefix = _rewrite(self.wasm[:self.parts.guest.prefix_end], self.edits)
        return prefix + _tail(self.wasm, self.parts)


@dataclass(frozen=True)
class _Parts:
    guest: wasmbin.Component
    streams: int           # the instance index of the guest's wasi:io/streams import
    poll: int | None       # and of its wasi:io/poll import, when the adapter needs pollable
    adapter: bytes


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

HEX = "-hex"  # suffix of the host functions the adapter calls: "<function>-hex", bytes as hex text

_READS = ("[method]input-stream.read", "[method]input-stream.blocking-read")
_WRITES = ("[method]output-stream.write", "[method]output-stream.blocking-write-and-flush")

# wasi:io/streams@0.2.x in the adapter's text format: (parameters, result) per function
_ERR = "(error $se)"
_IN, _OUT = '(param "self" (borrow $in))', '(param "self" (borrow $out))'
_SIGNATURES: dict[str, tuple[str, str]] = {
    "[method]input-stream.read": (f'{_IN} (param "len" u64)', f"(result (list u8) {_ERR})"),
    "[method]input-stream.skip": (f'{_IN} (param "len" u64)', f"(result u64 {_ERR})"),
    "[method]input-stream.subscribe": (_IN, "(own $pl)"),
    "[method]output-stream.check-write": (_OUT, f"(result u64 {_ERR})"),
    "[method]output-stream.write": (f'{_OUT} (param "contents" (list u8))', f"(result {_ERR})"),
    "[method]output-stream.flush": (_OUT, f"(result {_ERR})"),
    "[method]output-stream.subscribe": (_OUT, "(own $pl)"),
    "[method]output-stream.write-zeroes": (f'{_OUT} (param "len" u64)', f"(result {_ERR})"),
    "[method]output-stream.splice": (f'{_OUT} (param "src" (borrow $in)) (param "len" u64)',
                                     f"(result u64 {_ERR})"),
}
for _blocking, _same in (("blocking-read", "read"), ("blocking-skip", "skip"),
                     ("blocking-write-and-flush", "write"), ("blocking-flush", "flush"),
                     ("blocking-write-zeroes-and-flush", "write-zeroes"), ("blocking-splice", "splice")):
    _res = "input-stream" if _same in ("read", "skip") else "output-stream"
    _SIGNATURES[f"[method]{_res}.{_blocking}"] = _SIGNATURES[f"[method]{_res}.{_same}"]


def _sig(name: str, hex_text: bool = False) -> str:
    params, result = _SIGNATURES[name]
    text = f"{params} (result {result})"
    return text.replace("(list u8)", "string") if hex_text else text


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
    _add_hex_functions(it, wrapped, edits)
    adapter = _adapter(names, wrapped, bool(polls))
    stream_name = c.instances[s] or ""
    functions = {f"{stream_name}#{n}{HEX}": f"{stream_name}#{n}" for n in wrapped}
    own = hashlib.sha256(adapter + repr(sorted(edits.items())).encode()).hexdigest()[:16]
    return Plan(wasm, tuple(n for n, _ in c.exports), functions, f"streams-adapter-{own}", edits,
                _Parts(c, s, polls[0] if polls else None, adapter))


def _add_hex_functions(it: wasmbin.InstanceType, wrapped: list[str], edits: Edits) -> None:
    """Append to the streams instance type a `string` type and, per wrapped function, a copy
    taking or returning that string: "<name>-hex". Appending keeps every index valid."""
    loc = it.locals
    by_name = {e.name: e for e in it.funcs}
    string_index = len(loc)
    added = [b"\x01" + bytes((wasmbin.STRING,))]
    exports: list[bytes] = []
    bytes_types = {i for i, x in enumerate(loc) if x.kind is wasmbin.Kind.BYTES}
    for name in wrapped:
        f = loc[by_name[name].type_index]
        subst = dict.fromkeys(bytes_types, string_index)
        if name in _READS:  # -> result<list<u8>, stream-error>: a result<string, stream-error> too
            res = f.result[0] if f.result else None
            r = loc[res] if res is not None else None
            if res is None or r is None or r.first != _RESULT or len(r.refs) != 2:
                raise wasmbin.Unsupported(f"{name}: not result<list<u8>, E>")
            ok, err = r.refs
            if ok not in bytes_types:
                raise wasmbin.Unsupported(f"{name}: not result<list<u8>, E>")
            subst[res] = string_index + len(added)
            added.append(b"\x01" + bytes((_RESULT,)) + b"\x01" + wasmbin.leb(string_index)
                         + b"\x01" + wasmbin.leb(err))
        elif not any(vt[0] in bytes_types for _, vt in f.params):
            raise wasmbin.Unsupported(f"{name}: no list<u8> parameter")
        ftype = string_index + len(added)
        added.append(b"\x01" + _encode_functype(f, subst))
        raw = (name + HEX).encode()
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


def _tail(wasm: bytes, p: _Parts) -> bytes:
    """After the guest's own import declarations: the adapter and the guest as nested
    components, the adapter instantiated with the host's streams (and poll), the guest with its
    imports but the adapter for streams, and the guest's exports re-exported."""
    c, streams, poll, adapter = p.guest, p.streams, p.poll, p.adapter
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
        _section(wasmbin.COMPONENT_SECTION, adapter),
        _section(wasmbin.COMPONENT_SECTION, wasm),
        _section(wasmbin.INSTANCE_SECTION, wasmbin.leb(2) + adapter_inst + guest_inst),
        _section(wasmbin.ALIAS_SECTION, wasmbin.leb(len(aliases)) + b"".join(aliases)),
        _section(wasmbin.EXPORT_SECTION, wasmbin.leb(len(exports)) + b"".join(exports)),
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

# The adapter's core: one memory, a bump allocator reset by every call, and the hex codec.
# Layout: 0-511 the two hex digits of every byte; 512-767 the value of every hex digit;
# 768-783 the return area of a call; the heap from 1024.
_HEX_DIGITS = "".join(f"{b:02x}" for b in range(256))
_HEX_VALUES = "".join(f"\\{int(chr(c), 16) if chr(c) in string.hexdigits else 0:02x}" for c in range(256))
_LIBC = f"""
(core module $libc
  (memory (export "memory") 1)
  (data (i32.const 0) "{_HEX_DIGITS}")
  (data (i32.const 512) "{_HEX_VALUES}")
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local $top i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.set $top (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (global.get $heap) (local.get $top))
      (then (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (global.get $heap) (local.get $top))
                                                          (i32.const 65535)) (i32.const 16)))
                        (i32.const -1))
              (then unreachable))))
    (local.get $p))
  (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new i32)
        (result i32)
    (local $p i32)
    (local.set $p (call $alloc (local.get $new)))
    (if (local.get $old) (then (memory.copy (local.get $p) (local.get $old)
      (select (local.get $old_size) (local.get $new) (i32.lt_u (local.get $old_size) (local.get $new))))))
    (local.get $p))
  (func (export "reset") (global.set $heap (i32.const 1024)))
  ;; n bytes at src -> 2n hex digits at dst
  (func (export "to-hex") (param $src i32) (param $n i32) (param $dst i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $src) (local.get $n)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      (i32.store16 (local.get $dst) (i32.load16_u (i32.shl (i32.load8_u (local.get $src)) (i32.const 1))))
      (local.set $src (i32.add (local.get $src) (i32.const 1)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 2)))
      (br $next))))
  ;; n hex digits at p -> n/2 bytes at p (in place: each pair is read before its byte is written)
  (func (export "from-hex") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $o i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $n)))
      (i32.store8 (i32.add (local.get $p) (local.get $o))
        (i32.or (i32.shl (i32.load8_u offset=512 (i32.load8_u (i32.add (local.get $p) (local.get $i))))
                         (i32.const 4))
                (i32.load8_u offset=512 (i32.load8_u offset=1 (i32.add (local.get $p) (local.get $i))))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $next)))
    (local.get $o)))
(core instance $libc (instantiate $libc))
"""

# A wrapped read: call the host, decode the hex digits of an ok result in place (return area at
# 768: discriminant, then pointer and length). A wrapped write: encode and send a piece at a time
# (`_write_piece`), stopping at the first error. The piece is larger than what the host lets one call write
# (4,096 bytes for blocking-write-and-flush, the 1 MiB check-write permit for write), so a call
# over wasmtime's limit reaches the host whole enough to trap there, as it would on Spin.
# Both lend the borrowed `self` on to the host and then drop it, as an export must.
_READ = """(func (export "{k}") (param i32 i64) (result i32)
    (call $reset)
    (call $h{k} (local.get 0) (local.get 1) (i32.const 768))
    (if (i32.eqz (i32.load8_u (i32.const 768)))
      (then (i32.store (i32.const 776)
                       (call $from_hex (i32.load (i32.const 772)) (i32.load (i32.const 776))))))
    (call $drop_in (local.get 0))
    (i32.const 768))"""
_WRITE = """(func (export "{k}") (param $self i32) (param $ptr i32) (param $len i32) (result i32)
    (local $hex i32) (local $n i32)
    (local.set $hex (call $alloc (i32.shl (select (local.get $len) (i32.const {piece})
                                                  (i32.lt_u (local.get $len) (i32.const {piece})))
                                          (i32.const 1))))
    (block $done (loop $next
      (local.set $n (select (local.get $len) (i32.const {piece})
                            (i32.lt_u (local.get $len) (i32.const {piece}))))
      (call $to_hex (local.get $ptr) (local.get $n) (local.get $hex))
      (call $h{k} (local.get $self) (local.get $hex) (i32.shl (local.get $n) (i32.const 1)) (i32.const 768))
      (br_if $done (i32.load8_u (i32.const 768)))
      (local.set $ptr (i32.add (local.get $ptr) (local.get $n)))
      (local.set $len (i32.sub (local.get $len) (local.get $n)))
      (br_if $next (local.get $len))))
    (call $drop_out (local.get $self))
    (call $reset)
    (i32.const 768))"""


def _write_piece(name: str) -> int:
    """Bytes per host call for a wrapped write: one byte past the most the host accepts at once."""
    return 65536 if name.endswith("blocking-write-and-flush") else (1 << 20) + 1


def _adapter(names: list[str], wrapped: list[str], poll: bool) -> bytes:
    """The adapter component (text format, compiled here): it exports the streams interface the
    guest imports; the byte functions go through the host's hex functions, the rest are the
    host's own."""
    declared = ['(export "input-stream" (type $in (sub resource)))',
                '(export "output-stream" (type $out (sub resource)))',
                '(export "error" (type $err (sub resource)))',
                '(type $se0 (variant (case "last-operation-failed" (own $err)) (case "closed")))',
                '(export "stream-error" (type $se (eq $se0)))']
    if poll:
        declared.append("(alias outer $adapter $pollable (type $pl))")
    declared += [f'(export "{n}" (func {_sig(n)}))' for n in names if n not in wrapped]
    declared += [f'(export "{n}{HEX}" (func {_sig(n, hex_text=True)}))' for n in wrapped]
    out = ["(component $adapter"]
    if poll:
        out += ['(import "poll" (instance $poll (export "pollable" (type (sub resource)))))',
                '(alias export $poll "pollable" (type $pollable))']
    out += ['(import "streams" (instance $s\n  ' + "\n  ".join(declared) + "))",
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
        out.append('(export $pl "pollable" (type $pollable))')
    out.append(_LIBC)
    mem = '(memory (core memory $libc "memory"))'
    realloc = '(realloc (core func $libc "realloc"))'
    out += [f'(core func $h{k} (canon lower (func $s "{n}{HEX}") {mem} {realloc}))'
            for k, n in enumerate(wrapped)]
    out += ['(core func $drop_in (canon resource.drop $in))',
            '(core func $drop_out (canon resource.drop $out))',
            '(core instance $host (export "drop-in" (func $drop_in)) (export "drop-out" (func $drop_out)) '
            + " ".join(f'(export "{k}" (func $h{k}))' for k in range(len(wrapped))) + ")"]
    core = ['(core module $m',
            '  (import "libc" "memory" (memory 1))',
            '  (import "libc" "alloc" (func $alloc (param i32) (result i32)))',
            '  (import "libc" "reset" (func $reset))',
            '  (import "libc" "to-hex" (func $to_hex (param i32 i32 i32)))',
            '  (import "libc" "from-hex" (func $from_hex (param i32 i32) (result i32)))',
            '  (import "host" "drop-in" (func $drop_in (param i32)))',
            '  (import "host" "drop-out" (func $drop_out (param i32)))']
    for k, n in enumerate(wrapped):
        params = "i32 i64 i32" if n in _READS else "i32 i32 i32 i32"
        core.append(f'  (import "host" "{k}" (func $h{k} (param {params})))')
    core += ["  " + (_READ.format(k=k) if n in _READS else _WRITE.format(k=k, piece=_write_piece(n)))
             for k, n in enumerate(wrapped)]
    out += ["\n".join(core) + ")",
            '(core instance $m (instantiate $m (with "libc" (instance $libc)) '
            '(with "host" (instance $host))))']
    for k, n in enumerate(wrapped):
        out += [f'(func $w{k} {_sig(n)} (canon lift (core func $m "{k}") {mem} {realloc}))',
                f'(export "{n}" (func $w{k}))']
    for k, n in enumerate(names):
        if n not in wrapped:
            # re-typed with this component's exported types, the only ones an export may name
            out += [f'(alias export $s "{n}" (func $p{k}))', f'(export "{n}" (func $p{k}) (func {_sig(n)}))']
    out.append(")")
    return bytes(wasmtime.wat2wasm("\n".join(out)))

"""A byte-exact re-implementation of what go-toml/v2 `Marshal` writes for spin-operator's
runtime config.

The runtime-config Secret is named `<app>-<adler32 of these bytes>`, so a single differing byte
(a quote style, a blank line, key order) renames the Secret and rolls the Deployment. The rules
reproduced here, from go-toml/v2's encoder:

* struct fields keep declaration order; map entries are sorted by key (bytewise);
* key-values of a table come first, then its sub-tables; sub-tables are separated by one blank
  line, and the first is preceded by one only when the table had key-values;
* a map of maps writes the parent header (`[key_value_store]`) even with no key-values;
* an array of tables repeats `[[name]]` per element, elements separated by a blank line;
* strings are single-quoted literals unless they contain `'`, CR, LF or an invalid ASCII
  control character, in which case they are basic strings with go-toml's escapes;
* bare keys are `[A-Za-z0-9_-]+`; other keys are literal-quoted, or basic-quoted when a literal
  cannot hold them; the empty key is `''`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# characters.InvalidAscii: U+0000-U+0008, U+000A-U+001F, U+007F (tab is allowed).
_INVALID_ASCII = frozenset([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _needs_quoting(text: str) -> bool:
    return any(c == "'" or ord(c) in _INVALID_ASCII for c in text)


def _quoted(text: str) -> str:
    out = ['"']
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) in _INVALID_ASCII:
            out.append(f"\\u00{ord(c):02X}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def encode_string(text: str) -> str:
    if _needs_quoting(text):
        return _quoted(text)
    return f"'{text}'"


def encode_key(key: str) -> str:
    if not key:
        return "''"
    if all(c in _BARE for c in key):
        return key
    if "'" in key or _needs_quoting(key):
        return _quoted(key)
    return f"'{key}'"


# A table as go-toml sees it: ordered key-values (already in output order) and ordered
# sub-tables, each either a Table or a list of Tables (an array of tables).
KeyValues = Sequence[tuple[str, str]]


class Table:
    __slots__ = ("kvs", "tables")

    def __init__(
        self, kvs: KeyValues = (), tables: Sequence[tuple[str, Table | Sequence[Table]]] = ()
    ) -> None:
        self.kvs = kvs
        self.tables = tables

    @classmethod
    def from_map(cls, values: Mapping[str, str]) -> Table:
        """A Go `map[string]string`: keys sorted."""
        return cls(kvs=sorted(values.items()))

    @classmethod
    def of_maps(cls, tables: Mapping[str, Mapping[str, str]]) -> Table:
        """A Go `map[string]map[string]string`: sorted sub-tables, no key-values."""
        return cls(tables=[(name, cls.from_map(tables[name])) for name in sorted(tables)])


def _encode_table(out: list[str], path: list[str], table: Table, header: bool) -> None:
    if header and path:
        out.append("[" + ".".join(encode_key(k) for k in path) + "]\n")
    for key, value in table.kvs:
        out.append(f"{encode_key(key)} = {encode_string(value)}\n")
    first = True
    for key, sub in table.tables:
        if first:
            first = False
            if table.kvs:
                out.append("\n")
        else:
            out.append("\n")
        sub_path = [*path, key]
        if isinstance(sub, Table):
            _encode_table(out, sub_path, sub, header=True)
        else:
            array_header = "[[" + ".".join(encode_key(k) for k in sub_path) + "]]\n"
            for i, element in enumerate(sub):
                if i:
                    out.append("\n")
                out.append(array_header)
                _encode_table(out, sub_path, element, header=False)


def marshal(root: Table) -> bytes:
    out: list[str] = []
    _encode_table(out, [], root, header=False)
    return "".join(out).encode()

"""The 1-based line of every key of a TOML document.

TOML libraries drop positions, so this is a small positional scanner run over text that tomllib
has already accepted (it is lenient: it only has to find where things are). Paths are tuples of
keys and array indexes, the same shape as the parsed data: `("component", "hello", "source")`,
`("trigger", "http", 0, "route")`, `("component", "web", "files", 1, "source")`.

Array-of-tables headers (`[[trigger.http]]`) count their elements, and a sub-table header under
one (`[component.trigger]` after `[[component]]` in manifest v1) resolves to its last element.
"""

from __future__ import annotations

Path = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class TomlLines:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self._aot_len: dict[Path, int] = {}
        self._scan()

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest recorded parent; None for the document."""
        probe = tuple(path)
        while probe:
            line = self.lines.get(probe)
            if line is not None:
                return line
            probe = probe[:-1]
        return None

    # --- scanning -------------------------------------------------------------------------

    def _peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def _advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.pos < len(self.text):
                if self.text[self.pos] == "\n":
                    self.line += 1
                self.pos += 1

    def _skip_ws(self, newlines: bool = False) -> None:
        while True:
            ch = self._peek()
            if ch in (" ", "\t", "\r") or (newlines and ch == "\n"):
                self._advance()
            elif newlines and ch == "#":
                self._skip_comment()
            else:
                return

    def _skip_comment(self) -> None:
        while self._peek() not in ("", "\n"):
            self._advance()

    def _record(self, path: Path, line: int) -> None:
        self.lines.setdefault(path, line)

    def _scan(self) -> None:
        table: Path = ()
        while self.pos < len(self.text):
            self._skip_ws(newlines=True)
            ch = self._peek()
            if ch == "":
                return
            if ch == "[":
                table = self._header()
            else:
                self._key_value(table)
            # Rest of the line (a trailing comment).
            self._skip_ws()
            if self._peek() == "#":
                self._skip_comment()
            while self._peek() not in ("", "\n"):
                self._advance()

    def _header(self) -> Path:
        line = self.line
        is_array = self._peek(1) == "["
        self._advance(2 if is_array else 1)
        keys = self._key()
        self._advance(2 if is_array else 1)
        resolved = self._resolve(keys)
        if is_array:
            index = self._aot_len.get(resolved, 0)
            self._aot_len[resolved] = index + 1
            self._record(resolved, line)
            resolved = (*resolved, index)
        self._record(resolved, line)
        return resolved

    def _resolve(self, keys: list[str]) -> Path:
        """Insert the current index after every array-of-tables prefix."""
        out: Path = ()
        for i, key in enumerate(keys):
            out = (*out, key)
            count = self._aot_len.get(out)
            if count is not None and i < len(keys) - 1:
                out = (*out, count - 1)
        return out

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip_ws()
            ch = self._peek()
            if ch in ('"', "'"):
                keys.append(self._string())
            else:
                start = self.pos
                while self._peek() in _BARE and self._peek():
                    self._advance()
                keys.append(self.text[start : self.pos])
            self._skip_ws()
            if self._peek() == ".":
                self._advance()
                continue
            return keys

    def _key_value(self, table: Path) -> None:
        line = self.line
        keys = self._key()
        path = table
        for key in keys:
            path = (*path, key)
            self._record(path, line)
        self._skip_ws()
        if self._peek() == "=":
            self._advance()
        self._skip_ws()
        self._value(path)

    def _value(self, path: Path) -> None:
        ch = self._peek()
        if ch == "{":
            self._inline_table(path)
        elif ch == "[":
            self._array(path)
        elif ch in ('"', "'"):
            self._string()
        else:
            while self._peek() not in ("", "\n", ",", "]", "}", "#"):
                self._advance()

    def _inline_table(self, path: Path) -> None:
        self._advance()  # {
        while True:
            self._skip_ws(newlines=True)
            ch = self._peek()
            if ch in ("}", ""):
                self._advance()
                return
            if ch == ",":
                self._advance()
                continue
            self._key_value(path)

    def _array(self, path: Path) -> None:
        self._advance()  # [
        index = 0
        while True:
            self._skip_ws(newlines=True)
            ch = self._peek()
            if ch in ("]", ""):
                self._advance()
                return
            if ch == ",":
                self._advance()
                continue
            item = (*path, index)
            self._record(item, self.line)
            self._value(item)
            index += 1

    def _string(self) -> str:
        quote = self._peek()
        if self._peek(1) == quote and self._peek(2) == quote:
            self._advance(3)
            start = self.pos
            while self.pos < len(self.text):
                if self.text.startswith(quote * 3, self.pos) and self._peek(3) != quote:
                    value = self.text[start : self.pos]
                    self._advance(3)
                    return value
                if quote == '"' and self._peek() == "\\":
                    self._advance()
                self._advance()
            return self.text[start:]
        self._advance()
        chars: list[str] = []
        while self._peek() not in ("", "\n", quote):
            if quote == '"' and self._peek() == "\\":
                chars.append(self._peek(1))
                self._advance(2)
                continue
            chars.append(self._peek())
            self._advance()
        self._advance()
        return "".join(chars)

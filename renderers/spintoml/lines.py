"""The 1-based line of every key of a TOML document.

TOML libraries drop positions, so this is a small positional scanner run over text that tomllib
has already accepted (it is lenient: it only has to find where things are). Paths are tuples of
keys and array indexes, the same shape as the parsed data: `("component", "hello", "source")`,
`("trigger", "http", 0, "route")`, `("component", "web", "files", 1, "source")`.

Array-of-tables headers (`[[trigger.http]]`) count their elements, and a sub-table header under
one (`[component.trigger]` after `[[component]]` in manifest v1) resolves to its last element.

The scan runs on the first lookup: a valid manifest never needs it, so it costs nothing there.
"""

from __future__ import annotations

import bisect
import re

Path = tuple[str | int, ...]

_WS = re.compile(r"[ \t\r]*")
_WS_NL = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]*")
_SCALAR = re.compile(r"[^\n,\]}#]*")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_LITERAL = re.compile(r"'[^'\n]*'?")
_ML_BASIC = re.compile(r'"""(?:[^\\]|\\.)*?"""', re.DOTALL)
_ML_LITERAL = re.compile(r"'''.*?'''", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)")
_EXTRA_DOUBLE = re.compile('"{0,2}')  # a multi-line string may end with up to 2 more quotes
_EXTRA_SINGLE = re.compile("'{0,2}")


class TomlLines:
    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: dict[Path, int] | None = None

    @property
    def lines(self) -> dict[Path, int]:
        if self._lines is None:
            self._lines = _Scanner(self.text).lines
        return self._lines

    def table_line(self, keys: tuple[str, ...]) -> int | None:
        """The line of the `[a.b.c]` header of a table of bare keys, found with one regex
        search rather than a full scan (which runs only if the header is written another way)."""
        pattern = r"^[ \t]*\[[ \t]*" + r"[ \t]*\.[ \t]*".join(re.escape(k) for k in keys) + r"[ \t]*\]"
        match = re.search(pattern, self.text, re.MULTILINE)
        if match is None:
            return self.line_of(keys)
        return self.text.count("\n", 0, match.start()) + 1

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest recorded parent; None for the document."""
        lines = self.lines
        probe = tuple(path)
        while probe:
            line = lines.get(probe)
            if line is not None:
                return line
            probe = probe[:-1]
        return None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[Path, int] = {}
        self._aot_len: dict[Path, int] = {}
        self._scan()

    def _line(self) -> int:
        return bisect.bisect_left(self.newlines, self.pos) + 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _match(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        if match is None:  # pragma: no cover - every pattern here can match empty or is guarded
            return ""
        self.pos = match.end()
        return match.group(0)

    def _record(self, path: Path, line: int) -> None:
        self.lines.setdefault(path, line)

    def _scan(self) -> None:
        table: Path = ()
        end = len(self.text)
        while self.pos < end:
            self._match(_WS_NL)
            if self.pos >= end:
                return
            start = self.pos
            if self._peek() == "[":
                table = self._header()
            else:
                self._key_value(table)
            # The rest of the line (a trailing comment, or text the scanner did not understand).
            newline = self.text.find("\n", max(self.pos, start + 1))
            self.pos = end if newline < 0 else newline

    def _header(self) -> Path:
        line = self._line()
        is_array = self.text.startswith("[[", self.pos)
        self.pos += 2 if is_array else 1
        keys = self._key()
        resolved = self._resolve(keys)
        for end in range(1, len(resolved)):  # implicitly created parent tables
            self._record(resolved[:end], line)
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
            self._match(_WS)
            ch = self._peek()
            if ch == '"':
                keys.append(_ESCAPE.sub(r"\1", self._match(_BASIC)[1:-1]))
            elif ch == "'":
                keys.append(self._match(_LITERAL)[1:-1])
            else:
                keys.append(self._match(_BARE_KEY))
            self._match(_WS)
            if self._peek() != ".":
                return keys
            self.pos += 1

    def _key_value(self, table: Path) -> None:
        line = self._line()
        path = table
        for key in self._key():
            path = (*path, key)
            self._record(path, line)
        if self._peek() == "=":
            self.pos += 1
        self._match(_WS)
        self._value(path)

    def _value(self, path: Path) -> None:
        ch = self._peek()
        if ch == "{":
            self._inline_table(path)
        elif ch == "[":
            self._array(path)
        elif ch == '"':
            self._match(_ML_BASIC if self.text.startswith('"""', self.pos) else _BASIC)
            self._match(_EXTRA_DOUBLE)
        elif ch == "'":
            self._match(_ML_LITERAL if self.text.startswith("'''", self.pos) else _LITERAL)
            self._match(_EXTRA_SINGLE)
        else:
            self._match(_SCALAR)

    def _inline_table(self, path: Path) -> None:
        self.pos += 1  # {
        while True:
            self._match(_WS_NL)
            ch = self._peek()
            if ch in ("}", ""):
                self.pos += 1
                return
            if ch == ",":
                self.pos += 1
                continue
            before = self.pos
            self._key_value(path)
            if self.pos == before:  # pragma: no cover - malformed input; never loop forever
                self.pos += 1

    def _array(self, path: Path) -> None:
        self.pos += 1  # [
        index = 0
        while True:
            self._match(_WS_NL)
            ch = self._peek()
            if ch in ("]", ""):
                self.pos += 1
                return
            if ch == ",":
                self.pos += 1
                continue
            item = (*path, index)
            self._record(item, self._line())
            before = self.pos
            self._value(item)
            if self.pos == before:  # pragma: no cover - malformed input; never loop forever
                self.pos += 1
            index += 1

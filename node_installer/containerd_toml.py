"""Reading and editing a containerd config: the runtime table, kept to exactly one change (pure).

The table the installer owns, for runtime NAME (= the RuntimeClass handler):

    version 2 (containerd 1.x):  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME]
    version 3 (containerd 2.x):  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.NAME]
        runtime_type = "/opt/kwasm/bin/containerd-shim-NAME"     (an absolute path, as RCM writes)
    [... .runtimes.NAME.options]                                  (only with RUNTIME_OPTIONS)
        SystemdCgroup = true

Version 1 (`plugins.cri`, containerd < 1.3's layout) and a config without `version` (which containerd
reads as version 1) are refused: the CRI table has another name there, and guessing wrong would
register a runtime containerd never sees. containerd 2.x accepts version 2 files (it migrates them
in memory), so a version 2 file gets a version 2 table whatever the containerd version.

Edits go through tomlkit, so comments, order and formatting of everything else are kept byte for
byte. The new table is rendered as text indented like its sibling runtime tables, parsed, and
grafted under the deepest table that already exists on its path (the end of the `runtimes` table
when there is one). Every edit is checked by parsing the result again: the document without the
runtime table must equal the original, and the table must hold exactly the intended values;
anything else is a ConfigLayoutError and nothing is written.

k3s/RKE2 templates (`*.tmpl`) are Go templates: lines that consist only of a template action
(`{{ template "base" . }}`, `{{- if ... }}`, `{{ end }}`) are masked as comments while editing and
restored afterwards. Actions elsewhere (`enable_cdi = {{ .EnableCDI }}`) are not TOML and are
refused as unparsable, naming the line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.container import Container, OutOfOrderTableProxy
from tomlkit.items import InlineTable, Table

from node_installer.errors import ConfigLayoutError, ConfigSyntaxError, ConfigVersionError

CRI_PLUGINS: dict[int, str] = {2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
SUPPORTED_VERSIONS = tuple(CRI_PLUGINS)

OptionValue = bool | int | float | str

_TEMPLATE_LINE = re.compile(r"^[ \t]*\{\{.*\}\}[ \t]*$")
_TEMPLATE_MARK = "# spindle-node-installer:template-line:{index}"
_INCLUDES_BASE = re.compile(r"\{\{-?\s*template\s+\"base\"")


@dataclass(frozen=True)
class RuntimeEntry:
    """A `runtimes.<name>` table as found in a config."""

    name: str
    runtime_type: str | None
    options: Mapping[str, Any]
    binary_name: str | None  # options.BinaryName (k3s points its own shim entries at their binaries)

    def describe(self) -> str:
        target = f" -> {self.binary_name}" if self.binary_name else ""
        return f"{self.name} ({self.runtime_type or 'no runtime_type'}{target})"


class Config:
    """A parsed containerd config (or k3s template, or k0s drop-in). Not mutated by the edits."""

    def __init__(self, path: PurePosixPath, text: str, *, template: bool = False) -> None:
        self.path = path
        self.text = text
        self.template = template
        self.template_lines: dict[str, str] = {}
        self.doc = self._parse(self._mask(text) if template else text)

    # -- parsing ------------------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, path: PurePosixPath, data: bytes, *, template: bool = False) -> Config:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigSyntaxError(str(path), f"not UTF-8 text (byte {exc.start})") from exc
        return cls(path, text, template=template)

    def _mask(self, text: str) -> str:
        lines = text.split("\n")
        for index, line in enumerate(lines):
            if _TEMPLATE_LINE.match(line):
                mark = _TEMPLATE_MARK.format(index=index)
                self.template_lines[mark] = line
                lines[index] = mark
        return "\n".join(lines)

    def _parse(self, text: str) -> tomlkit.TOMLDocument:
        try:
            return tomlkit.parse(text)
        except tomlkit.exceptions.ParseError as exc:
            hint = ""
            lines = self.text.split("\n")
            if self.template and 0 < exc.line <= len(lines) and "{{" in lines[exc.line - 1]:
                hint = " (a Go template action inside a TOML line; only whole-line actions can be kept)"
            message = str(exc).split(" at line ")[0]
            raise ConfigSyntaxError(
                str(self.path), f"not valid TOML: {message}{hint}", exc.line, exc.col
            ) from exc

    @property
    def includes_base_template(self) -> bool:
        """A k3s/RKE2 template that renders k3s's own config first (`{{ template "base" . }}`)."""
        return any(_INCLUDES_BASE.search(line) for line in self.template_lines.values())

    # -- reading ------------------------------------------------------------------------------------

    @property
    def declared_version(self) -> int | None:
        """The `version` key, None when absent; ConfigVersionError when it is not an integer."""
        if "version" not in self.doc:
            return None
        value = self.doc["version"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigVersionError(
                f"{self.path}: version", f"not an integer: {tomlkit.item(value).as_string()}"
            )
        return int(value)

    def runtimes(self, version: int) -> dict[str, RuntimeEntry]:
        """Every `runtimes.*` table under the CRI plugin of `version`."""
        node = _lookup(self.doc, (*_runtimes_path(version),))
        if not isinstance(node, dict):
            return {}
        return {
            str(name): _entry(str(name), table) for name, table in node.items() if isinstance(table, dict)
        }

    def runtime(self, version: int, name: str) -> RuntimeEntry | None:
        return self.runtimes(version).get(name)

    def cri_disabled(self, version: int) -> bool:
        """True when `disabled_plugins` names the CRI plugin (the runtime then serves only ctr)."""
        disabled = self.doc.get("disabled_plugins", [])
        names = {"cri", "io.containerd.grpc.v1.cri", CRI_PLUGINS[version]}
        return isinstance(disabled, list) and any(str(item) in names for item in disabled)

    # -- editing ------------------------------------------------------------------------------------

    def with_runtime(
        self, version: int, name: str, runtime_type: str, options: Mapping[str, OptionValue]
    ) -> str:
        """The config text with the runtime table added (it must not exist yet)."""
        doc = tomlkit.parse(tomlkit.dumps(self.doc))  # a private copy; self.doc stays as parsed
        path = (*_runtimes_path(version), name)
        if _lookup(doc, path) is not None:
            raise ConfigLayoutError(f"{self.path}: {_dotted(path)}", "already exists")
        container: Any = doc
        depth = 0
        for depth, key in enumerate(path[:-1]):
            if key not in container:
                break
            child = container[key]
            if isinstance(child, InlineTable) or not isinstance(
                child, Table | Container | OutOfOrderTableProxy
            ):
                kind = "an inline table" if isinstance(child, InlineTable) else f"a {type(child).__name__}"
                raise ConfigLayoutError(
                    f"{self.path}: {_dotted(path[: depth + 1])}",
                    f"is {kind}, not a table; cannot add the runtime table under it",
                )
            container = child
        else:
            depth = len(path) - 1
        indent = self._indents(container, depth == len(path) - 1, depth)
        snippet = _snippet(path, runtime_type, options, indent, self._plugin_quote(version))
        snippet_doc = tomlkit.parse(snippet + "\n\n")  # a blank line after the block
        graft: Any = snippet_doc
        for key in path[:depth]:
            graft = graft[key]
        item = graft[path[depth]]
        indent_as_rendered = item.trivia.indent
        container[path[depth]] = item
        item.trivia.indent = indent_as_rendered  # tomlkit prefixes the parent table's indentation
        text = tomlkit.dumps(doc)
        block = snippet + "\n\n"
        if text.endswith(block):  # appended at the very end: no trailing blank line
            text = text[:-1]
        text = _tidy(self._unmask(text), snippet)
        self._check(text, version, name, RuntimeEntry(name, runtime_type, dict(options), None))
        return text

    def without_runtime(self, version: int, name: str) -> str:
        """The config text with the runtime table removed, and parents that held only it."""
        doc = tomlkit.parse(tomlkit.dumps(self.doc))
        path = (*_runtimes_path(version), name)
        if _lookup(doc, path) is None:
            return self.text
        chain: list[Any] = [doc]
        for key in path[:-1]:
            chain.append(chain[-1][key])
        del chain[-1][path[-1]]
        for level in range(len(path) - 1, 0, -1):  # prune parents we emptied (implicit super tables)
            parent, child = chain[level - 1], chain[level]
            if isinstance(child, Table) and child.is_super_table() and len(child) == 0:
                del parent[path[level - 1]]
            else:
                break
        text = _tidy_removal(self.text, self._unmask(tomlkit.dumps(doc)))
        self._check(text, version, name, None)
        return text

    # -- helpers ------------------------------------------------------------------------------------

    def _unmask(self, text: str) -> str:
        for mark, line in self.template_lines.items():
            text = text.replace(mark, line, 1)
        return text

    def _plugin_quote(self, version: int) -> str:
        return "'" if f"'{CRI_PLUGINS[version]}'" in self.text else '"'

    def _indents(self, container: Any, is_runtimes: bool, depth: int) -> tuple[str, str, str, str]:
        """(table header, its keys, options header, its keys) indentation: copied from the first
        sibling runtime table when there is one; else, in a file that indents its tables
        (containerd's `config default` layout), one level below the table it goes into; else flush
        left with keys indented by two (k3s's layout)."""
        if is_runtimes:
            for _name, sibling in container.items():
                if isinstance(sibling, Table) and not sibling.is_super_table():
                    header = _last_line(sibling.trivia.indent)
                    keys = _first_key_indent(sibling, header + "  ")
                    options = sibling.get("options")
                    if isinstance(options, Table):
                        opt_header = _last_line(options.trivia.indent)
                        return header, keys, opt_header, _first_key_indent(options, opt_header + "  ")
                    step = keys[len(header) :] if len(keys) > len(header) else ""
                    return header, keys, keys, keys + step
        if re.search(r"^[ \t]+\[", self.text, re.MULTILINE) is None:
            return "", "  ", "", "  "
        header = _child_table_indent(container, depth)
        return header, header + "  ", header + "  ", header + "    "

    def _check(self, text: str, version: int, name: str, expected: RuntimeEntry | None) -> None:
        """Parse the edited text: everything but the runtime table must equal the original."""
        try:
            edited = Config(self.path, text, template=self.template)
        except ConfigSyntaxError as exc:
            raise ConfigLayoutError(
                str(self.path), f"the edit produced invalid TOML ({exc.message})"
            ) from exc
        path = (*_runtimes_path(version), name)
        before = _without(self.doc.unwrap(), path)
        after = _without(edited.doc.unwrap(), path)
        found = edited.runtime(version, name)
        intended = (
            found is None
            if expected is None
            else found is not None
            and found.runtime_type == expected.runtime_type
            and dict(found.options) == dict(expected.options)
            and set(_lookup(edited.doc.unwrap(), path) or {}) <= {"runtime_type", "options"}
        )
        if before != after or not intended:
            raise ConfigLayoutError(
                f"{self.path}: {_dotted(path)}",
                "the edit would change more than the runtime table (the file's layout is not one "
                "the installer can edit); nothing was written",
            )


# -- module helpers (pure) --------------------------------------------------------------------------


def runtime_table_name(version: int, name: str) -> str:
    """The dotted table name, for messages: plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME."""
    return _dotted((*_runtimes_path(version), name))


def cri_plugin(path: PurePosixPath, version: int | None, source: str = "version") -> str:
    """The CRI runtime plugin name for a config version; ConfigVersionError for the others."""
    if version in CRI_PLUGINS:
        return CRI_PLUGINS[version]
    if version is None:
        raise ConfigVersionError(
            f"{path}: version",
            "no `version` key (containerd reads that as version 1, whose CRI table is plugins.cri); "
            "add `version = 2` (containerd 1.x) or `version = 3` (containerd 2.x)",
        )
    raise ConfigVersionError(
        f"{path}: {source}",
        f"unsupported config version {version} (supported: 2 for containerd 1.x, 3 for containerd 2.x)",
    )


def coerce_option(key: str, value: object) -> OptionValue:
    """A RUNTIME_OPTIONS value as it is written to TOML: "true"/"false" become booleans, integer
    and decimal strings numbers, anything else a quoted string (RCM writes them all unquoted)."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", value.strip()):
            return float(value)
        return value
    raise ValueError(f"option {key}: {type(value).__name__} values cannot be written (use a string)")


def _runtimes_path(version: int) -> tuple[str, ...]:
    return ("plugins", CRI_PLUGINS[version], "containerd", "runtimes")


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(tomlkit.key(part).as_string() for part in path)


def _lookup(doc: Any, path: tuple[str, ...]) -> Any:
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _without(data: Any, path: tuple[str, ...]) -> Any:
    """A plain copy of `data` with `path` removed, and parents left empty by that pruned."""
    if not path or not isinstance(data, dict):
        return data
    head, rest = path[0], path[1:]
    out = dict(data)
    if head not in out:
        return out
    if not rest:
        del out[head]
        return out
    child = _without(out[head], rest)
    if isinstance(child, dict) and not child and isinstance(out[head], dict):
        del out[head]
    else:
        out[head] = child
    return out


def _entry(name: str, table: Any) -> RuntimeEntry:
    plain = table.unwrap() if hasattr(table, "unwrap") else dict(table)
    options = plain.get("options", {})
    options = options if isinstance(options, dict) else {}
    runtime_type = plain.get("runtime_type")
    binary = options.get("BinaryName")
    return RuntimeEntry(
        name,
        str(runtime_type) if runtime_type is not None else None,
        options,
        str(binary) if binary else None,
    )


def _tidy(text: str, snippet: str) -> str:
    """Whitespace and comments around the grafted block: tomlkit files the comment lines right
    above a table header under the table before them, so a block grafted at the end of that table
    lands between the comment and the header it describes; such comment lines move back down to
    just above their header. And the block gets a blank line before it, like its neighbours."""
    lines = text.split("\n")
    block = snippet.split("\n")
    try:
        start = lines.index(block[0])
    except ValueError:
        return text
    top = start
    while top > 0 and lines[top - 1].lstrip().startswith("#"):
        top -= 1
    end = start + len(block) + 1  # the block and its blank line
    if top < start and end < len(lines) and lines[end - 1] == "":
        lines = lines[:top] + lines[start:end] + lines[top:start] + lines[end:]
        start = top
    if start > 0 and lines[start - 1].strip() and not lines[start - 1].lstrip().startswith("#"):
        lines.insert(start, "")
    return "\n".join(lines)


def _tidy_removal(before: str, after: str) -> str:
    """The blank line that separated a removed table from the one above goes with it, unless
    another blank line (or the end of the file) does not follow."""
    old, new = before.split("\n"), after.split("\n")
    opcodes = [
        op for op in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes() if op[0] != "equal"
    ]
    if len(opcodes) != 1 or opcodes[0][0] != "delete":
        return after
    _tag, start, end, _j1, _j2 = opcodes[0]
    if start > 0 and old[start - 1] == "" and end < len(old) and old[end] == "":
        return "\n".join(old[: start - 1] + old[end:])
    return after


def _child_table_indent(container: Any, depth: int) -> str:
    """The header indentation of a table placed in `container`: that of its first child table,
    else one level (two spaces) below its own header, else two spaces per level of `depth`."""
    for _name, child in container.items():
        if isinstance(child, Table) and not child.is_super_table():
            return _last_line(str(child.trivia.indent))
    if isinstance(container, Table) and not container.is_super_table():
        return _last_line(str(container.trivia.indent)) + "  "
    return "  " * depth


def _first_key_indent(table: Table, fallback: str) -> str:
    for key, item in table.value.body:
        if key is not None and not isinstance(item, Table):
            return _last_line(str(item.trivia.indent))
    return fallback


def _last_line(indent: str) -> str:
    """Indentation proper: what follows the last newline tomlkit may have kept with it."""
    return indent.rsplit("\n", 1)[-1]


def _snippet(
    path: tuple[str, ...],
    runtime_type: str,
    options: Mapping[str, OptionValue],
    indent: tuple[str, str, str, str],
    plugin_quote: str,
) -> str:
    header_indent, key_indent, options_header_indent, options_key_indent = indent
    parts = [tomlkit.key(part).as_string() for part in path]
    if plugin_quote == "'":
        parts[1] = f"'{path[1]}'"
    header = ".".join(parts)
    lines = [
        f"{header_indent}[{header}]",
        f"{key_indent}runtime_type = {tomlkit.item(runtime_type).as_string()}",
    ]
    if options:
        lines.append(f"{options_header_indent}[{header}.options]")
        for key, value in options.items():
            lines.append(
                f"{options_key_indent}{tomlkit.key(key).as_string()} = {tomlkit.item(value).as_string()}"
            )
    return "\n".join(lines)

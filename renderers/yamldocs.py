"""Multi-document YAML (and JSON) with the line of every field.

`load_documents(text, path)` composes the stream with libyaml (`CSafeLoader`, falling back to the
pure-Python loader) and builds the Python values from the node graph in one walk, recording the
1-based line of every field as a dotted path ("spec.replicas", "spec.variables[0].name"). Scalars
are constructed by PyYAML's own SafeConstructor, so typing (ints, bools, timestamps, ...) is exactly
`yaml.safe_load`'s.

Speed: libyaml does the parsing; the one Python walk costs about as much as PyYAML's own
constructor, so 1,000 SpinApp files load in about 0.2-0.4 s on the 2-core dev machine, within
~1.5x of `yaml.load_all(..., CSafeLoader)` (see bench/render.py).

Errors (all `DocumentError`, naming the file and line):
- malformed YAML: the documents before the broken one are kept, nothing after it;
- a duplicate key in a mapping (Kubernetes' strict decoding rejects them; PyYAML keeps the last);
- bytes that are not UTF-8 (a Latin-1 file, say): the line of the first bad byte.

Values follow Kubernetes' YAML→JSON conversion where it differs from `yaml.safe_load`: timestamps
stay the text written, and scalar mapping keys become strings, so every object is plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from renderers.errors import DocumentError, Location

try:
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _KubeConstructor(SafeConstructor):
    """safe_load's constructor, with timestamps kept as text (also under merge keys)."""

    def construct_yaml_timestamp(self, node: Any) -> Any:
        return self.construct_scalar(node)


_KubeConstructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    _TIMESTAMP_TAG: _KubeConstructor.construct_yaml_timestamp,
}


@dataclass(frozen=True)
class YamlDoc:
    """One non-empty document of a stream."""

    body: Any
    index: int  # 0-based position in the stream
    line: int  # 1-based line where the document's content starts
    lines: dict[str, int] = field(default_factory=dict)
    end_line: int = 0  # 1-based line where the document's content ends


class _Builder:
    """Walks a composed node graph into Python values, recording field lines."""

    def __init__(self, path: str, constructor: SafeConstructor) -> None:
        self.path = path
        self.constructor = constructor
        self.lines: dict[str, int] = {}
        self.errors: list[DocumentError] = []
        self.seen: set[int] = set()

    def build(self, node: Node, where: str) -> Any:
        if isinstance(node, ScalarNode):
            if node.tag in (_STR_TAG, _TIMESTAMP_TAG):
                # Kubernetes' YAML→JSON keeps timestamps as the text written (JSON has no dates).
                return node.value
            return self.constructor.construct_object(node, deep=True)
        if id(node) in self.seen:
            # An alias of a collection already built: PyYAML's constructor shares the object, so
            # anchors cannot blow up ("billion laughs") or recurse forever.
            return self.constructor.construct_object(node, deep=True)
        self.seen.add(id(node))
        if isinstance(node, SequenceNode):
            items = []
            for i, child in enumerate(node.value):
                child_path = f"{where}[{i}]"
                self.lines[child_path] = child.start_mark.line + 1
                items.append(self.build(child, child_path))
            return items
        if isinstance(node, MappingNode):
            return self._mapping(node, where)
        raise AssertionError(f"unknown node {node!r}")  # pragma: no cover

    def _mapping(self, node: MappingNode, where: str) -> Any:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # Merge keys (`<<: *anchor`) are rare in manifests: let PyYAML resolve the
                # mapping; the lines recorded so far stay valid.
                return self.constructor.construct_object(node, deep=True)
            key = self.build(key_node, where)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.errors.append(
                    DocumentError(
                        "mapping keys must be scalars",
                        Location(self.path, key_node.start_mark.line + 1, where or None),
                    )
                )
                continue
            if not isinstance(key, str):
                # JSON object keys are strings: Kubernetes turns `80:` into "80", `true:` into "true".
                key = _json_key(key)
            child_path = f"{where}.{key}" if where else str(key)
            line = key_node.start_mark.line + 1
            if key in result:
                self.errors.append(
                    DocumentError(
                        f"duplicate key {key!r} (first at line {self.lines.get(child_path)})",
                        Location(self.path, line, child_path),
                    )
                )
            self.lines[child_path] = line
            result[key] = self.build(value_node, child_path)
        return result


def _json_key(key: int | float | bool | None) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _problem_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _complete_before(docs: list[YamlDoc], text: str | bytes, error_line: int) -> list[YamlDoc]:
    """The documents separated from the error by a `---` line: libyaml may hand out a document
    whose stray trailing content is the error, and that document is not trustworthy."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    starts = [i + 1 for i, row in enumerate(text.splitlines()) if row.startswith("---")]
    last_start = max((s for s in starts if s <= error_line), default=0)
    return [doc for doc in docs if doc.end_line <= last_start]


def _utf8_error(text: str | bytes, path: str) -> DocumentError | None:
    """The error naming the first byte that is not UTF-8, with its line (libyaml's own message
    names neither), or None when `text` decodes."""
    if isinstance(text, str) or text.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 is YAML too
        return None
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        return DocumentError(
            f"not UTF-8 text: byte 0x{text[exc.start]:02x} ({exc.reason}); save the file as UTF-8",
            Location(path, line),
        )
    return None


def load_documents(text: str | bytes, path: str) -> tuple[list[YamlDoc], list[DocumentError]]:
    """Parse every document of `text` (the content of the repo file `path`).

    Empty documents (`---` alone, comments only) are skipped. Never raises for bad YAML: the
    errors are returned next to the documents that parsed.
    """
    docs: list[YamlDoc] = []
    errors: list[DocumentError] = []
    loader = _Loader(text)
    constructor = _KubeConstructor()
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                break
            empty = isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"
            if not empty:
                builder = _Builder(path, constructor)
                body = builder.build(node, "")
                errors.extend(builder.errors)
                docs.append(
                    YamlDoc(body, index, node.start_mark.line + 1, builder.lines, node.end_mark.line + 1)
                )
            index += 1
    except yaml.YAMLError as exc:
        not_utf8 = _utf8_error(text, path) if isinstance(exc, ReaderError) else None
        if not_utf8 is not None:
            errors.append(not_utf8)
            return [], errors
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        message = f"malformed YAML: {context + ', ' if context else ''}{problem}"
        line = _problem_line(exc)
        errors.append(DocumentError(message, Location(path, line)))
        if line is not None:
            docs = _complete_before(docs, text, line)
    except UnicodeDecodeError as exc:
        errors.append(DocumentError(f"not UTF-8 text: {exc.reason}", Location(path)))
    finally:
        loader.dispose()
    return docs, errors

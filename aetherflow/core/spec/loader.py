"""Reading YAML while keeping the position of every node.

ruamel.yaml's composer records line and column for each mapping key, value and
sequence item. :func:`load_yaml` turns the document into plain Python data plus a
:class:`PositionIndex` mapping YAML paths (tuples of keys and indexes) to positions, so
that later stages can point at the exact node a problem comes from.

Before composing, one pass over the parser's events bounds the work a document can
cause (see :mod:`aetherflow.core.limits`): aliases may not expand beyond a budget of
nodes and characters (a few hundred bytes of anchors can otherwise stand for billions
of nodes), nesting is limited (deep nesting exhausts the interpreter's stack) and so are
the digits of an integer (Python refuses to convert longer ones).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import Location, Problem, SpecError
from ..limits import MAX_ALIAS_CHARS, MAX_ALIAS_NODES, MAX_INTEGER_DIGITS, MAX_NESTING_DEPTH

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    """``("jobs", 1, "steps", 0, "type")`` -> ``jobs[1].steps[0].type``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class PositionIndex:
    """Positions (1-based line, column) of the nodes of one YAML document."""

    def __init__(self, file: str | None):
        self.file = file
        self._values: dict[PathKey, tuple[int, int]] = {}
        self._keys: dict[PathKey, tuple[int, int]] = {}

    def record(self, path: PathKey, value_pos: tuple[int, int] | None, key_pos: tuple[int, int] | None = None):
        if value_pos is not None:
            self._values[path] = (value_pos[0] + 1, value_pos[1] + 1)
        if key_pos is not None:
            self._keys[path] = (key_pos[0] + 1, key_pos[1] + 1)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of ``path``, or of its nearest recorded ancestor."""
        probe = tuple(path)
        while True:
            table = self._keys if key and probe in self._keys else self._values
            pos = table.get(probe) or self._keys.get(probe)
            if pos is not None or not probe:
                break
            probe = probe[:-1]
        line, column = pos if pos else (None, None)
        return Location(self.file, line, column, format_path(path))


def _record(node: Any, data: Any, path: PathKey, index: PositionIndex) -> None:
    """Walk the composed node tree beside the constructed data, noting positions."""
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    if isinstance(node, MappingNode) and isinstance(data, dict):
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            child = path + (key,)
            index.record(
                child,
                (value_node.start_mark.line, value_node.start_mark.column),
                (key_node.start_mark.line, key_node.start_mark.column),
            )
            if key in data:
                _record(value_node, data[key], child, index)
    elif isinstance(node, SequenceNode) and isinstance(data, list):
        for i, (item_node, item) in enumerate(zip(node.value, data)):
            child = path + (i,)
            index.record(child, (item_node.start_mark.line, item_node.start_mark.column))
            _record(item_node, item, child, index)


def _stringify_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _stringify_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_stringify_keys(v) for v in data]
    return data


def _mark_location(file: str | None, mark: Any, path: str = "") -> Location:
    if mark is None:
        return Location(file, None, None, path)
    return Location(file, mark.line + 1, mark.column + 1, path)


_DECIMAL_INTEGER = re.compile(r"[-+]?[0-9][0-9_]*")


class _Frame:
    """An open mapping or sequence during the event pass."""

    __slots__ = ("anchor", "chars", "children", "is_map", "key", "nodes")

    def __init__(self, anchor: str | None, is_map: bool):
        self.nodes, self.chars, self.anchor, self.is_map = 1, 0, anchor, is_map
        self.children, self.key = 0, "?"

    def add(self, nodes: int, chars: int, key: Any = None) -> None:
        self.nodes += nodes
        self.chars += chars
        if self.is_map and self.children % 2 == 0:
            self.key = key if isinstance(key, str) else "?"
        self.children += 1


def _event_path(stack: list[_Frame]) -> PathKey:
    """The YAML path of the node the parser is at."""
    path: list[str | int] = []
    for frame in stack[1:]:  # stack[0] is the root, above the document
        if frame.is_map:
            if frame.children % 2:
                path.append(frame.key)
        else:
            path.append(frame.children)
    return tuple(path)


def _check_bounds(events, file: str | None) -> None:
    """Refuse, with a located error, a document that would cost more than the limits allow."""
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceStartEvent,
    )

    stack: list[_Frame] = [_Frame(None, False)]  # a root frame collects the documents
    sizes: dict[str, tuple[int, int]] = {}
    open_anchors: set[str] = set()
    added_nodes = added_chars = 0

    def fail(event, message: str, hint: str | None) -> None:
        location = _mark_location(file, event.start_mark, format_path(_event_path(stack)))
        raise SpecError([Problem(location, message, hint)])

    for event in events:
        kind = type(event)
        if kind is ScalarEvent:
            value = event.value
            if len(value) > MAX_INTEGER_DIGITS and not event.style and event.tag is None and _DECIMAL_INTEGER.fullmatch(value):
                digits = sum(c.isdigit() for c in value)
                if digits > MAX_INTEGER_DIGITS:
                    fail(event, f"integer with {digits} digits", f"integers may have at most {MAX_INTEGER_DIGITS} digits; quote the value to keep it as text")
            if event.anchor:
                sizes[event.anchor] = (1, len(value))
            stack[-1].add(1, len(value), value)
        elif kind is AliasEvent:
            anchor = event.anchor
            if anchor in open_anchors:
                fail(event, f"alias *{anchor} refers to the node that contains it", "a flow cannot contain itself; copy the part you need")
            nodes, chars = sizes.get(anchor, (1, 0))
            added_nodes += nodes
            added_chars += chars
            if added_nodes > MAX_ALIAS_NODES or added_chars > MAX_ALIAS_CHARS:
                fail(
                    event,
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes or {MAX_ALIAS_CHARS:,} characters",
                    f"an anchor is copied wherever its alias is used; all aliases of a file together may add "
                    f"at most {MAX_ALIAS_NODES:,} nodes and {MAX_ALIAS_CHARS:,} characters",
                )
            stack[-1].add(nodes, chars)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if len(stack) > MAX_NESTING_DEPTH:
                fail(event, f"mappings and lists nested more than {MAX_NESTING_DEPTH} levels deep", None)
            stack.append(_Frame(event.anchor, kind is MappingStartEvent))
            if event.anchor:
                open_anchors.add(event.anchor)
        elif isinstance(event, CollectionEndEvent):
            frame = stack.pop()
            if frame.anchor:
                sizes[frame.anchor] = (frame.nodes, frame.chars)
                open_anchors.discard(frame.anchor)
            stack[-1].add(frame.nodes, frame.chars)


def load_yaml(text: str, file: str | None = None) -> tuple[Any, PositionIndex]:
    """Parse YAML text. Syntax errors and duplicate keys become :class:`SpecError`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    # The safe loader composes in C when ruamel.yaml.clib is installed (several times
    # faster than the round-trip loader); positions come from the composed nodes.
    yaml = YAML(typ="safe", pure=False)
    yaml.allow_duplicate_keys = False
    index = PositionIndex(file)
    try:
        _check_bounds(yaml.parse(text), file)
        node = yaml.compose(text)
        document = yaml.constructor.construct_document(node) if node is not None else None
    except DuplicateKeyError as exc:
        location = _mark_location(file, exc.problem_mark)
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else ""
        message = f"duplicate key {key!r}" if key else "duplicate key"
        raise SpecError([Problem(location, message, "each key may appear once in a mapping")]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # An unterminated construct is only noticed at the end of the file; point at its start.
        if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
            mark = exc.context_mark
        location = _mark_location(file, mark)
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        raise SpecError([Problem(location, message, "check indentation, quotes and colons near this line")]) from None
    except YAMLError as exc:
        raise SpecError([Problem(Location(file), f"invalid YAML: {exc}", None)]) from None
    index.record((), (0, 0))
    if node is not None:
        _record(node, document, (), index)
    return _stringify_keys(document), index


def read_text(path: str | Path, what: str = "file", *, keep_newlines: bool = False) -> str:
    """A YAML file's text; a missing or unreadable file is a :class:`SpecError`.
    ``keep_newlines`` keeps ``\\r\\n`` as written (for a tool that writes the file back)."""
    file = str(path)
    try:
        with open(path, encoding="utf-8", newline="" if keep_newlines else None) as handle:
            return handle.read()
    except FileNotFoundError:
        raise SpecError([Problem(Location(file), f"{what} not found", "check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(Location(file), f"cannot read {what}: {exc}", None)]) from None

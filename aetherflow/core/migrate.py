"""``aetherflow migrate``: rewrite a flow and its profiles written for aetherflow-core 0.0.14.

The rewrites are those of :mod:`aetherflow.core.upstream` (templates, ``steps.X.Y``,
``locks:``, connector keys and drivers, step types, ``external.process`` inputs).
ruamel.yaml's round-trip parser gives the position of every node, and each rewrite is
an edit of exactly the text it changes: comments, blank lines, quoting, indentation
and key order elsewhere stay byte for byte as they were (dumping the whole document
again would re-indent any file whose indentation is not uniform).

Every finding is reported with its line in the original file: what was rewritten,
and what could not be (kept as it was, for a person to decide). A key is removed only
where it had no effect there, and that removal is reported too. Migrating a migrated
file changes nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import upstream
from .connectors.families.db import plain_url, url_scheme
from .errors import Location, Problem, ProfileError, SpecError
from .spec.loader import format_path, load_yaml, read_text
from .templating import OUTPUT_ROOTS, RESOURCE_ROOTS, STEP_ROOTS, WHEN_ROOTS


@dataclass(frozen=True)
class Finding:
    """A rewrite made, or a form left for a person, at ``line`` of the original file."""

    line: int | None
    path: str
    message: str
    hint: str | None = None

    def describe(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        text = f"{where} at {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "path": self.path, "message": self.message, "hint": self.hint}


@dataclass
class FileMigration:
    path: str
    original: str
    migrated: str
    rewritten: list[Finding] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.migrated != self.original

    def diff(self) -> str:
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            self.migrated.splitlines(keepends=True),
            fromfile=self.path,
            tofile=f"{self.path} (migrated)",
        )
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)

    def original_line(self, line: int | None) -> int | None:
        """The line of the original file that ``line`` of the migrated text was (None if new)."""
        if line is None:
            return None
        matcher = difflib.SequenceMatcher(None, self.original.splitlines(), self.migrated.splitlines(), autojunk=False)
        for block in matcher.get_matching_blocks():
            if block.b < line <= block.b + block.size:
                return block.a + (line - block.b)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "changed": self.changed,
            "rewritten": [f.to_dict() for f in self.rewritten],
            "remaining": [f.to_dict() for f in self.remaining],
        }


@dataclass
class Migration:
    files: list[FileMigration]
    #: What ``validate`` still finds in the migrated flow.
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.files)

    def secret_values(self) -> list[str]:
        """Values written in the files that are secret (by key, by decode mark, or as a
        URL's password), for the scrubber of whatever prints the diff."""
        from .decode import DecodeSpecError, parse_decode
        from .redaction import is_secret_key, url_passwords

        found: list[str] = []

        def walk(value: Any, key: str = "", secret: bool = False) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, str(k), secret or is_secret_key(str(k)))
            elif isinstance(value, list):
                for item in value:
                    walk(item, key, secret)
            elif isinstance(value, str):
                if secret:
                    found.append(value)
                found.extend(url_passwords(value))

        for item in self.files:
            for text in (item.original, item.migrated):
                try:
                    data, _ = load_yaml(text, item.path)
                except SpecError:
                    continue
                walk(data)
                for holder in _decode_holders(data):
                    try:
                        marks = parse_decode(holder.get("decode")).marked
                    except DecodeSpecError:
                        continue
                    for path in marks:
                        section, _, rest = path.partition(".")
                        value = _dig(holder.get(section), rest.split("."))
                        if isinstance(value, str):
                            found.append(value)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "valid": not self.problems,
            "files": [f.to_dict() for f in self.files],
            "problems": [p.to_dict() for p in self.problems],
        }


def migrate_flow(flow_path: str | Path, profiles_path: str | Path | None = None) -> Migration:
    """Rewrite a flow (and its profiles file, if any) in memory; nothing is written."""
    flow_file = str(flow_path)
    flow = _Document(read_text(flow_file, "flow file", keep_newlines=True), flow_file)
    if profiles_path is None and (Path(flow_file).parent / "profiles.yaml").is_file():
        profiles_path = Path(flow_file).parent / "profiles.yaml"
    profiles = _Document(read_text(profiles_path, "profiles file", keep_newlines=True), str(profiles_path)) if profiles_path else None
    _FlowRewriter(flow, profiles).run()
    files = [flow.result()]
    if profiles is not None:
        files.append(profiles.result())
    return Migration(files, _check(files))


def _decode_holders(data: Any) -> Iterator[dict]:
    """Mappings that may carry ``decode`` next to ``config``: resources, profiles, overlays."""
    if not isinstance(data, dict):
        return
    resources = data.get("resources")
    groups = [resources] if isinstance(resources, dict) else []
    groups.append(data)  # a profiles file: profile name -> overlay
    for group in groups:
        for body in group.values():
            if isinstance(body, dict):
                yield body
                for overlay in (body.get("resources") or {}).values() if isinstance(body.get("resources"), dict) else ():
                    if isinstance(overlay, dict):
                        yield overlay


def _dig(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def write_migration(migration: Migration) -> list[str]:
    """Write the changed files (each to a temporary name, then renamed); return their paths."""
    from .atomic import atomic_path

    written = []
    for item in migration.files:
        if not item.changed:
            continue
        target = Path(item.path)
        mode = target.stat().st_mode & 0o7777
        with atomic_path(target) as tmp:
            tmp.write_text(item.migrated, encoding="utf-8", newline="")
            os.chmod(tmp, mode)
        written.append(item.path)
    return written


def _check(files: list[FileMigration]) -> list[Problem]:
    """Validate the migrated text; what validate finds that no rewrite reported joins
    the file's ``remaining`` list, at its line in the original file."""
    from .profiles import check_profiles_text
    from .spec import parse_flow

    problems: list[Problem] = []
    for position, item in enumerate(files):
        try:
            if position == 0:
                parse_flow(item.migrated, item.path)
            else:
                check_profiles_text(item.migrated, item.path)
        except SpecError as exc:
            found = list(exc.problems)
        except ProfileError as exc:
            found = [Problem(exc.location or Location(item.path), exc.message, exc.hint)]
        else:
            continue
        problems.extend(found)
        known = {finding.path for finding in item.remaining}
        for problem in found:
            if problem.location.path not in known:
                line = item.original_line(problem.location.line)
                item.remaining.append(Finding(line, problem.location.path, problem.message, problem.hint))
        item.remaining.sort(key=lambda f: (f.line or 0, f.path))
    return problems


# -- the text and its nodes ----------------------------------------------------------------------


def _is_map(node: Any) -> bool:
    return type(node).__name__ == "MappingNode"


def _is_seq(node: Any) -> bool:
    return type(node).__name__ == "SequenceNode"


def _is_scalar(node: Any) -> bool:
    return type(node).__name__ == "ScalarNode"


class _Document:
    """One YAML file: its node tree, the edits to its text, and what was found."""

    def __init__(self, text: str, file: str):
        from ruamel.yaml import YAML

        load_yaml(text, file)  # YAML errors are reported like validate's
        self.text = text
        self.file = file
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.root = YAML().compose(text)
        self._parents: dict[int, tuple[Any, str]] = {}  # id(mapping value) -> (owning mapping, key)
        self._flow_scalars: set[int] = set()  # scalars written inside {...} or [...]
        self._index_parents(self.root)
        self._removed: dict[int, tuple[Any, set[str]]] = {}  # id(block mapping) -> (mapping, keys removed)
        self._flow_removed: dict[int, tuple[Any, set[str]]] = {}  # the same for {...} mappings
        self._handled: set[str] = set()
        self._constructor = YAML(typ="safe", pure=True).constructor
        self._edits: list[tuple[int, int, str]] = []
        # Scalars are rewritten once, through every transform asked of them, in order.
        self._scalars: dict[int, tuple[Any, list[Callable[[str], str]]]] = {}
        self.rewritten: list[Finding] = []
        self.remaining: list[Finding] = []

    def _index_parents(self, node: Any, in_flow: bool = False) -> None:
        in_flow = in_flow or bool(getattr(node, "flow_style", False))
        if _is_map(node):
            for key_node, value in node.value:
                self._parents[id(value)] = (node, key_node.value)
                self._index_parents(value, in_flow)
        elif _is_seq(node):
            for item in node.value:
                self._index_parents(item, in_flow)
        elif in_flow:
            self._flow_scalars.add(id(node))

    # -- reading

    def value(self, node: Any) -> Any:
        return None if node is None else self._constructor.construct_object(node, deep=True)

    @staticmethod
    def entries(node: Any) -> list[tuple[Any, Any]]:
        return list(node.value) if _is_map(node) else []

    def get(self, node: Any, key: str) -> Any:
        for key_node, value_node in self.entries(node):
            if key_node.value == key:
                return value_node
        return None

    def key_node(self, node: Any, key: str) -> Any:
        for key_node, _ in self.entries(node):
            if key_node.value == key:
                return key_node
        return None

    def text_of(self, node: Any) -> str:
        return self.text[node.start_mark.index : self._content_end(node)]

    @staticmethod
    def line(node: Any) -> int | None:
        return node.start_mark.line + 1 if node is not None else None

    # -- findings

    def did(self, node: Any, path: tuple, message: str) -> None:
        self._handled.add(format_path(path))
        self.rewritten.append(Finding(self.line(node), format_path(path), message))

    def todo(self, node: Any, path: tuple, message: str, hint: str | None = None) -> None:
        self._handled.add(format_path(path))
        self.remaining.append(Finding(self.line(node), format_path(path), message, hint))

    def handled(self, path: tuple) -> bool:
        """Whether a rewrite or a finding was already recorded at ``path``."""
        return format_path(path) in self._handled

    # -- edits

    def _edit(self, start: int, end: int, new: str) -> None:
        self._edits.append((start, end, new))

    def _content_end(self, node: Any) -> int:
        """Where a node's own text ends (a block collection's end mark is the next token)."""
        if _is_scalar(node) or getattr(node, "flow_style", False):
            return node.end_mark.index
        children = [n for pair in node.value for n in pair] if _is_map(node) else list(node.value)
        return max((self._content_end(child) for child in children), default=node.start_mark.index)

    def _line_end(self, index: int) -> int:
        """Index just after the newline that ends the line containing ``index``."""
        newline = self.text.find("\n", index)
        return len(self.text) if newline < 0 else newline + 1

    def _line_start(self, index: int) -> int:
        return self.text.rfind("\n", 0, index) + 1

    def set_scalar(self, node: Any, transform: Callable[[str], str]) -> bool:
        """Rewrite a string scalar through ``transform``, keeping its quoting style.
        True when the value changes."""
        old = self.value(node)
        if not isinstance(old, str):
            return False
        _, transforms = self._scalars.setdefault(id(node), (node, []))
        before = _compose(transforms)(old)
        if transform(before) == before:
            return False
        transforms.append(transform)
        return True

    def _scalar_edit(self, node: Any, transforms: list[Callable[[str], str]]) -> None:
        start, end = node.start_mark.index, node.end_mark.index
        apply = _compose(transforms)
        if node.style in ("|", ">"):
            self._edit(start, end, apply(self.text[start:end]))
        else:
            multiline = "\n" in self.text[start:end]
            self._edit(start, end, _render_scalar(apply(self.value(node)), node.style, multiline=multiline, flow=id(node) in self._flow_scalars))

    def rename_key(self, key_node: Any, new: str) -> None:
        quote = key_node.style if key_node.style in ("'", '"') else ""
        self._edit(key_node.start_mark.index, key_node.end_mark.index, f"{quote}{new}{quote}")

    def remove_entry(self, mapping: Any, key: str) -> bool:
        """Remove ``key`` and its value. False when its layout is not one this handles."""
        pairs = self.entries(mapping)
        index = next((i for i, (k, _) in enumerate(pairs) if k.value == key), None)
        if index is None:
            return False
        key_node, value_node = pairs[index]
        end = self._content_end(value_node)
        if mapping.flow_style:
            # Removed with the commas between them when the result is built.
            self._flow_removed.setdefault(id(mapping), (mapping, set()))[1].add(key)
            return True
        line_start = self._line_start(key_node.start_mark.index)
        if self.text[line_start : key_node.start_mark.index].strip():
            return False
        if len(pairs) == 1 and self._parents.get(id(mapping)) is None:
            return False
        self._edit(line_start, self._line_end(end), "")
        self._removed.setdefault(id(mapping), (mapping, set()))[1].add(key)
        return True

    def _flow_removal_edits(self, mapping: Any, keys: set[str]) -> None:
        """Edits removing ``keys`` from a ``{...}`` mapping with the commas that separated
        them, touching no text of the entries that stay."""
        pairs = self.entries(mapping)
        spans = [(k.start_mark.index, self._content_end(v), k.value in keys) for k, v in pairs]
        kept = [i for i, span in enumerate(spans) if not span[2]]
        i = 0
        while i < len(spans):
            if not spans[i][2]:
                i += 1
                continue
            j = i
            while j + 1 < len(spans) and spans[j + 1][2]:
                j += 1
            after = next((k for k in kept if k > j), None)
            before = next((k for k in reversed(kept) if k < i), None)
            if after is not None:
                self._edit(spans[i][0], spans[after][0], "")  # the run and the comma after it
            elif before is not None:
                self._edit(spans[before][1], spans[j][1], "")  # the comma before the run, and the run
            else:
                self._edit(spans[i][0], spans[j][1], "")
            i = j + 1

    def replace_entry(self, mapping: Any, key: str, new_entries: list[tuple[str, str]]) -> bool:
        """Put ``new_entries`` (key, value text) where ``key`` and its value were."""
        key_node = self.key_node(mapping, key)
        if key_node is None or not new_entries:
            return False
        end = self._content_end(self.get(mapping, key))
        if mapping.flow_style:
            text = ", ".join(f"{k}: {v}" for k, v in new_entries)
        else:
            indent = " " * key_node.start_mark.column
            text = (self.newline + indent).join(f"{k}: {v}" for k, v in new_entries)
        self._edit(key_node.start_mark.index, end, text)
        return True

    def add_entry(self, mapping: Any, key: str, value_text: str, *, after: str | None = None) -> None:
        """Add ``key: value_text`` to a mapping, after the entry ``after`` (default: the last)."""
        pairs = self.entries(mapping)
        if mapping.flow_style:
            if not pairs:
                brace = mapping.start_mark.index
                self._edit(brace + 1, brace + 1, f"{key}: {value_text}")
                return
            anchor = next((v for k, v in pairs if k.value == after), pairs[-1][1])
            position = self._content_end(anchor)
            self._edit(position, position, f", {key}: {value_text}")
            return
        anchor_key, anchor_value = next(((k, v) for k, v in pairs if k.value == after), pairs[-1])
        position = self._line_end(self._content_end(anchor_value))
        prefix = "" if self.text[position - 1 : position] == "\n" else self.newline
        self._edit(position, position, f"{prefix}{' ' * anchor_key.start_mark.column}{key}: {value_text}{self.newline}")

    # -- result

    def result(self) -> FileMigration:
        for node, transforms in self._scalars.values():
            if transforms:
                self._scalar_edit(node, transforms)
        for mapping, keys in self._flow_removed.values():
            self._flow_removal_edits(mapping, keys)
        for mapping, keys in list(self._removed.values()):
            if len(keys) == len(mapping.value):
                # An emptied block mapping would read as null: remove the key that holds it
                # (the removals inside it are then moot).
                self.remove_entry(*self._parents[id(mapping)])
        kept: list[tuple[int, int, str]] = []
        for start, end, new in sorted(self._edits, key=lambda e: (e[0], e[1])):
            if kept and start < kept[-1][1]:
                # An edit inside a span replaced as a whole is moot (a removed key's value).
                if end <= kept[-1][1]:
                    continue
                raise ValueError(f"overlapping edits in {self.file} at offset {start}")
            kept.append((start, end, new))
        text = self.text
        for start, end, new in reversed(kept):
            text = text[:start] + new + text[end:]
        order = lambda f: (f.line or 0, f.path)  # noqa: E731
        return FileMigration(self.file, self.text, text, sorted(self.rewritten, key=order), sorted(self.remaining, key=order))


def _compose(transforms: list[Callable[[str], str]]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        for transform in transforms:
            text = transform(text)
        return text

    return apply


_PLAIN_UNSAFE = re.compile(r"^[\s\-?:,\[\]{}#&*!|>'\"%@`]|: |\s#|\s$|^$")
# Inside a flow collection (``{a: b}``) these end a plain scalar too.
_FLOW_UNSAFE = re.compile(r"[:,\[\]{}#]")


def _render_scalar(value: str, style: str | None, *, multiline: bool = False, flow: bool = False) -> str:
    """``value`` as YAML scalar text in ``style`` (plain, ``'`` or ``"``) where it can be."""
    if "\n" not in value and not multiline:
        plain_ok = not _PLAIN_UNSAFE.search(value) and not (flow and _FLOW_UNSAFE.search(value))
        if style is None and plain_ok and not _looks_typed(value):
            return value
        if style == "'":
            return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, ensure_ascii=False)


def _looks_typed(value: str) -> bool:
    """A plain scalar that YAML would read as something other than this string."""
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe", pure=True).load(f"x: {value}") != {"x": value}
    except Exception:  # noqa: BLE001 - any parse failure means "quote it"
        return True


def _flow_map(items: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_render_value(v)}" for k, v in items.items()) + "}"


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return _flow_map(value)
    if value is None:
        return "null"
    return _render_scalar(str(value), None, flow=True)


# -- the rewrites ---------------------------------------------------------------------------------


_CLEANUP = "cleanup_policy: on_success made explicit (the default there; here it is never)"


class _FlowRewriter:
    def __init__(self, flow: _Document, profiles: _Document | None):
        from .connectors import registry
        from .steps.registry import step_types

        self.flow = flow
        self.profiles = profiles
        self.registry = registry
        self.registered = {entry.key for entry in registry.entries()}
        self.step_types = set(step_types())
        # resource name -> (kind, driver) after rewriting, for profile key renames
        self.resource_drivers: dict[str, tuple[str, str]] = {}
        self.resource_profiles: dict[str, str] = {}

    def run(self) -> None:
        root = self.flow.root
        if not _is_map(root):
            return
        flow_meta = self.flow.get(root, "flow")
        if _is_map(flow_meta):
            self._flow_meta(flow_meta)
        resources = self.flow.get(root, "resources")
        jobs = self.flow.get(root, "jobs")
        shares = self._share_prefixes(jobs)
        for key_node, resource in self.flow.entries(resources):
            if _is_map(resource):
                self._resource(key_node.value, resource, shares.get(key_node.value, set()))
        for i, job in enumerate(jobs.value if _is_seq(jobs) else []):
            if _is_map(job):
                self._job(i, job)
        if self.profiles is not None and _is_map(self.profiles.root):
            self._profiles()

    # flow: ------------------------------------------------------------------------------------

    def _flow_meta(self, meta: Any) -> None:
        doc = self.flow
        for key_node, value in doc.entries(meta):
            if key_node.value in ("workspace", "state", "lock", "description", "id"):
                self._templates(doc, value, ("flow", key_node.value), RESOURCE_ROOTS)
        locks = doc.get(meta, "locks")
        if locks is not None:
            spec = doc.value(locks) or {}
            scope = spec.get("scope", "job") if isinstance(spec, dict) else "job"
            where = ("flow", "locks")
            if doc.get(meta, "lock") is not None:
                doc.todo(locks, where, "flow.locks is beside flow.lock", upstream.flow_key_hint(where))
            elif scope == "flow":
                lock = {"key": doc.value(doc.get(meta, "id")) or "flow", "ttl_seconds": spec.get("ttl_seconds", 3600)}
                doc.replace_entry(meta, "locks", [("lock", _flow_map(lock))])
                doc.did(locks, where, "locks (scope: flow) is now lock: one lock held for the whole run")
            elif doc.remove_entry(meta, "locks"):
                doc.did(locks, where, f"locks (scope: {scope}) had no effect there and is removed; wrap steps that need exclusion in with_lock")
            else:
                doc.todo(locks, where, "flow.locks is not read here", upstream.flow_key_hint(where))
        workspace = doc.get(meta, "workspace")
        workspace_key = doc.key_node(meta, "workspace")
        if workspace is None:
            doc.add_entry(meta, "workspace", "{cleanup_policy: on_success}", after="id")
            doc.did(doc.key_node(meta, "id"), ("flow", "workspace"), _CLEANUP)
        elif _is_map(workspace):
            layout = doc.get(workspace, "layout")
            if layout is not None:
                where = ("flow", "workspace", "layout")
                if len(doc.entries(workspace)) == 1:
                    doc.replace_entry(meta, "workspace", [("workspace", "{cleanup_policy: on_success}")])
                    doc.did(layout, where, "workspace.layout removed: a job's artifacts directory is its workspace here")
                    doc.did(workspace_key, ("flow", "workspace", "cleanup_policy"), _CLEANUP)
                    workspace = None
                elif doc.remove_entry(workspace, "layout"):
                    doc.did(layout, where, "workspace.layout removed: a job's artifacts directory is its workspace here")
                else:
                    doc.todo(layout, where, "workspace.layout is not read here", upstream.flow_key_hint(where))
            if workspace is not None and doc.get(workspace, "cleanup_policy") is None:
                doc.add_entry(workspace, "cleanup_policy", "on_success")
                doc.did(workspace_key, ("flow", "workspace", "cleanup_policy"), _CLEANUP)
        state = doc.get(meta, "state")
        backend = doc.get(state, "backend") if _is_map(state) else None
        name = doc.value(backend)
        if backend is not None and name in upstream.STATE_BACKENDS:
            doc.todo(backend, ("flow", "state", "backend"), f"state backend {name!r} does not exist here", upstream.STATE_BACKENDS[name])

    # resources: -------------------------------------------------------------------------------

    def _share_prefixes(self, jobs: Any) -> dict[str, set[str]]:
        """SMB share names used as ``SHARE:/path`` prefixes in step inputs, per resource."""
        found: dict[str, set[str]] = {}
        for job in jobs.value if _is_seq(jobs) else []:
            for step in self._seq(self.flow.get(job, "steps")):
                inputs = self.flow.value(self.flow.get(step, "inputs")) if _is_map(step) else None
                if not isinstance(inputs, dict) or not isinstance(inputs.get("resource"), str):
                    continue
                for value in _strings(inputs):
                    match = re.match(r"^([A-Za-z0-9_.$-]{2,}):[\\/]", value)
                    if match:
                        found.setdefault(inputs["resource"], set()).add(match.group(1))
        return found

    @staticmethod
    def _seq(node: Any) -> list:
        return list(node.value) if _is_seq(node) else []

    def _resource(self, name: str, resource: Any, shares: set[str]) -> None:
        doc = self.flow
        base = ("resources", name)
        kind_node, driver_node = doc.get(resource, "kind"), doc.get(resource, "driver")
        kind, driver = doc.value(kind_node), doc.value(driver_node)
        config = doc.get(resource, "config")
        profile = doc.value(doc.get(resource, "profile"))
        if isinstance(profile, str):
            self.resource_profiles[name] = profile
        if not isinstance(kind, str) or not isinstance(driver, str):
            return
        driver = self._driver(name, resource, kind, driver, driver_node, config)
        self.resource_drivers[name] = (kind, driver)
        schemas = self._schemas(kind, driver)
        for section in ("config", "options"):
            self._section_keys(doc, resource, section, base, schemas)
            self._templates(doc, doc.get(resource, section), base + (section,), RESOURCE_ROOTS)
        if kind == "smb" and schemas.get("config") is not None and "share" in schemas["config"]:
            self._smb_share(name, resource, shares)
        if profile and self.profiles is not None:
            self._profile_precedence(name, resource, profile)

    def _driver(self, name: str, resource: Any, kind: str, driver: str, driver_node: Any, config: Any) -> str:
        doc = self.flow
        where = ("resources", name, "driver")
        registered = (kind, driver) in self.registered
        # db/sqlalchemy exists here too, but a database with a driver of its own moves there.
        if registered and (kind, driver) != ("db", "sqlalchemy"):
            if kind == "db":
                self._sqlalchemy_url(name, config, driver)
            return driver
        new = None if registered else upstream.DRIVER_RENAMES.get((kind, driver))
        if new is not None and (kind, new) in self.registered:
            doc.set_scalar(driver_node, lambda _: new)
            doc.did(driver_node, where, f"driver {driver} is {new} here")
            return new
        url_node = doc.get(config, "url") if _is_map(config) else None
        url = doc.value(url_node)
        if kind == "db" and isinstance(url, str) and url_scheme(url):
            target = upstream.URL_DRIVERS.get(url_scheme(url) or "")
            if target is not None and (kind, target) in self.registered:
                doc.set_scalar(driver_node, lambda _: target)
                doc.did(driver_node, where, f"driver {driver} with a {url_scheme(url)} URL is {target} here")
                self._sqlalchemy_url(name, config, target)
                return target
        if registered:  # db/sqlalchemy with the URL of another database: as it is
            return driver
        hint = upstream.driver_hint(kind, driver, self.registered)
        doc.todo(driver_node, where, f"driver {kind}/{driver} is not available here", hint)
        return driver

    def _sqlalchemy_url(self, name: str, config: Any, driver: str | None = None) -> None:
        """A SQLAlchemy URL as this driver reads it: ``+driver`` dropped, sqlite/duckdb paths split out."""
        doc = self.flow
        url_node = doc.get(config, "url") if _is_map(config) else None
        url = doc.value(url_node)
        if not isinstance(url, str) or not url_scheme(url):
            return
        where = ("resources", name, "config", "url")
        scheme = url_scheme(url)
        if scheme in ("sqlite", "duckdb") and driver in ("sqlite3", "duckdb"):
            path = re.sub(r"^[A-Za-z0-9+]+:///", "", url)
            doc.replace_entry(config, "url", [("path", _render_scalar(path or ":memory:", url_node.style))])
            doc.did(url_node, where, f"a {scheme}:/// URL is path: here")
        elif plain_url(url) != url:
            doc.set_scalar(url_node, plain_url)
            doc.did(url_node, where, "the +driver part of a SQLAlchemy URL dropped")

    def _schemas(self, kind: str, driver: str) -> dict[str, dict | None]:
        if (kind, driver) not in self.registered:
            return {}
        try:
            config, options = self.registry.schema_of(self.registry.get_entry(kind, driver))
        except Exception:  # noqa: BLE001 - a plugin that fails to import is reported by validate
            return {}
        return {"config": config, "options": options}

    def _section_keys(self, doc: _Document, owner: Any, section: str, base: tuple, schemas: dict) -> None:
        """Connector keys of that version under ``owner.section`` renamed or moved."""
        node = doc.get(owner, section)
        if not _is_map(node) or not schemas:
            return
        for key_node, value in doc.entries(node):
            key = key_node.value
            where = base + (section, key)
            if doc.handled(where):
                continue
            target = upstream.key_rewrite(section, key, schemas)
            if target is not None and target[0] == section:
                if doc.get(node, target[1]) is not None:
                    doc.todo(key_node, where, f"both {key} and {target[1]} are set", f"keep {target[1]}")
                    continue
                doc.rename_key(key_node, target[1])
                doc.did(key_node, where, f"{section}.{key} is {section}.{target[1]} here")
            elif target is not None:
                other = doc.get(owner, target[0])
                if other is not None and not _is_map(other):
                    continue
                if other is not None and doc.get(other, target[1]) is not None:
                    doc.todo(key_node, where, f"both {section}.{key} and {target[0]}.{target[1]} are set", f"keep {target[0]}.{target[1]}")
                    continue
                if not doc.remove_entry(node, key):
                    doc.todo(key_node, where, f"{section}.{key} is {target[0]}.{target[1]} here", upstream.key_hint(section, key, schemas))
                    continue
                if other is None:
                    doc.add_entry(owner, target[0], "{" + f"{target[1]}: {doc.text_of(value)}" + "}", after=section)
                else:
                    doc.add_entry(other, target[1], doc.text_of(value))
                doc.did(key_node, where, f"{section}.{key} is {target[0]}.{target[1]} here")
            elif (section, key) in upstream.KEYS_WITHOUT_COUNTERPART and key.startswith(("pool", "max_overflow", "connect_args")):
                if doc.remove_entry(node, key):
                    doc.did(key_node, where, f"{section}.{key} removed: {upstream.KEYS_WITHOUT_COUNTERPART[(section, key)]}")
                else:
                    doc.todo(key_node, where, f"{section}.{key} has no counterpart here", upstream.KEYS_WITHOUT_COUNTERPART[(section, key)])
            elif schemas.get(section) is not None and key not in schemas[section]:
                doc.todo(key_node, where, f"{section} key {key!r} is not known to this connector", upstream.key_hint(section, key, schemas))

    def _smb_share(self, name: str, resource: Any, shares: set[str]) -> None:
        doc = self.flow
        config = doc.get(resource, "config")
        if _is_map(config) and doc.get(config, "share") is not None:
            return
        where = ("resources", name, "config", "share")
        if len(shares) == 1 and _is_map(config):
            (share,) = shares
            doc.add_entry(config, "share", _render_scalar(share, None))
            doc.did(config, where, f"share: {share} set from the SHARE:/path prefixes of the steps using {name}")
        else:
            names = ", ".join(sorted(shares)) or "none found"
            doc.todo(
                resource,
                where,
                "an SMB resource here names its share in config.share",
                f"set config.share; a SHARE:/path prefix must name that share (prefixes used: {names}); use one resource per share",
            )

    def _profile_precedence(self, name: str, resource: Any, profile: str) -> None:
        """There a resource's own keys won over its profile's; here the profile's win."""
        doc, prof = self.flow, self.profiles
        body = prof.get(prof.root, profile)
        for section in ("config", "options"):
            mine = doc.get(resource, section)
            theirs = prof.get(body, section) if _is_map(body) else None
            for key_node, _ in doc.entries(mine):
                if prof.get(theirs, key_node.value) is not None:
                    doc.todo(
                        key_node,
                        ("resources", name, section, key_node.value),
                        f"profile {profile!r} also sets {section}.{key_node.value}: there the resource's value won, here the profile's wins",
                        "keep one of the two values",
                    )

    # jobs and steps: --------------------------------------------------------------------------

    def _job(self, i: int, job: Any) -> None:
        doc = self.flow
        when = doc.get(job, "when")
        if when is not None:
            self._templates(doc, when, ("jobs", i, "when"), WHEN_ROOTS)
        for k, step in enumerate(self._seq(doc.get(job, "steps"))):
            if _is_map(step):
                self._step(("jobs", i, "steps", k), step)

    def _step(self, base: tuple, step: Any) -> None:
        doc = self.flow
        type_node = doc.get(step, "type")
        type_name = doc.value(type_node)
        inputs = doc.get(step, "inputs")
        if isinstance(type_name, str) and type_name not in self.step_types:
            renamed = upstream.STEP_RENAMES.get(type_name)
            if renamed is not None and renamed[0] in self.step_types:
                new, renames = renamed
                doc.set_scalar(type_node, lambda _: new)
                doc.did(type_node, base + ("type",), f"step type {type_name} is {new} here")
                for key_node, value in doc.entries(inputs):
                    if key_node.value in renames:
                        if key_node.value == "archives" and not _is_scalar(value):
                            doc.todo(key_node, base + ("inputs", "archives"), "archive_extract takes one archive", "one archive_extract step per archive")
                            continue
                        doc.rename_key(key_node, renames[key_node.value])
                        doc.did(key_node, base + ("inputs", key_node.value), f"input {key_node.value} is {renames[key_node.value]} here")
                type_name = new
            else:
                doc.todo(type_node, base + ("type",), f"step type {type_name!r} is not available here", upstream.step_type_hint(type_name, self.step_types))
        declared = self._declared_inputs(type_name)
        if type_name == "external.process" and _is_map(inputs) and declared is not None:
            self._process_inputs(base, step, inputs, declared)
        if _is_map(inputs) and declared is not None:
            for key_node, _ in doc.entries(inputs):
                renamed = upstream.INPUT_RENAMES.get((type_name, key_node.value))
                if key_node.value not in declared and renamed and renamed[0] in declared and doc.get(inputs, renamed[0]) is None:
                    doc.rename_key(key_node, renamed[0])
                    note = f" ({renamed[1]})" if renamed[1] else ""
                    doc.did(key_node, base + ("inputs", key_node.value), f"input {key_node.value} is {renamed[0]} here{note}")
        if _is_map(inputs) and declared is not None and isinstance(type_name, str):
            for key_node, _ in doc.entries(inputs):
                name = key_node.value
                if name not in declared and upstream.input_hint(type_name, name) and not doc.handled(base + ("inputs", name)):
                    doc.todo(key_node, base + ("inputs", name), f"input {name!r} of {type_name} is not taken here", upstream.input_hint(type_name, name))
        self._templates(doc, inputs, base + ("inputs",), STEP_ROOTS)
        self._templates(doc, doc.get(step, "outputs"), base + ("outputs",), OUTPUT_ROOTS)

    def _declared_inputs(self, type_name: Any) -> dict | None:
        if not isinstance(type_name, str) or type_name not in self.step_types:
            return None
        from .steps.registry import get_step

        try:
            return get_step(type_name).inputs
        except Exception:  # noqa: BLE001 - a step that fails to load is reported by validate
            return None

    def _process_inputs(self, base: tuple, step: Any, inputs: Any, declared: dict) -> None:
        """external.process inputs in that version's form, each rewritten only when the
        step here declares the input that replaces it."""
        doc = self.flow
        log = doc.get(inputs, "log")
        if log is not None and "log" in declared:
            self._process_log(base, inputs, log, declared)
        success = doc.get(inputs, "success")
        if success is not None and "success" in declared:
            self._process_success(base, inputs, success)
        idempotency = doc.get(inputs, "idempotency")
        if idempotency is not None and "idempotency" in declared:
            self._process_idempotency(base, inputs, idempotency, declared)
        retry = doc.get(inputs, "retry")
        if retry is not None and "retry" not in declared:
            self._process_retry(base, step, inputs, retry, declared)

    def _process_log(self, base: tuple, inputs: Any, log: Any, declared: dict) -> None:
        """``log: {stdout: file, file_path: P, max_capture_kb: N}`` -> ``stdout: file:P`` and
        the input ``max_capture_bytes``; the other modes mean the same here."""
        doc = self.flow
        where = base + ("inputs", "log")
        spec = doc.value(log)
        if not isinstance(spec, dict):
            return
        files = [stream for stream in ("stdout", "stderr") if spec.get(stream) == "file"]
        if files and not spec.get("file_path"):
            doc.todo(log, where + (files[0],), f"log.{files[0]} is file but no file_path names the file", "write log: {stdout: file:PATH}")
            return
        kb = spec.get("max_capture_kb")
        if kb is not None and ("max_capture_bytes" not in declared or doc.get(inputs, "max_capture_bytes") is not None):
            doc.todo(log, where + ("max_capture_kb",), "log.max_capture_kb is not read here", "the bound of captured output is the input max_capture_bytes")
            return
        for stream in files:
            doc.set_scalar(doc.get(log, stream), lambda _, path=str(spec["file_path"]): f"file:{path}")
        if "file_path" in spec:
            doc.remove_entry(log, "file_path")
            doc.did(doc.key_node(log, "file_path"), where + ("file_path",), "log.file_path is written in each stream's mode here: file:PATH")
        if kb is not None:
            doc.remove_entry(log, "max_capture_kb")
            doc.add_entry(inputs, "max_capture_bytes", _render_value(int(kb) * 1024), after="log")
            doc.did(doc.key_node(log, "max_capture_kb"), where + ("max_capture_kb",), "log.max_capture_kb is the input max_capture_bytes here")

    def _process_success(self, base: tuple, inputs: Any, success: Any) -> None:
        """marker_file, required_files and required_globs are require_files here;
        forbidden_files is forbid_files."""
        doc = self.flow
        spec = doc.value(success)
        renamed = {"marker_file", "required_files", "required_globs", "forbidden_files"}
        if not isinstance(spec, dict) or not renamed & set(spec):
            return
        new: dict[str, Any] = {}
        for key, value in spec.items():
            target = {"forbidden_files": "forbid_files"}.get(key, "require_files" if key in renamed else key)
            values = value if isinstance(value, list) else [value]
            if target in ("require_files", "forbid_files"):
                new.setdefault(target, [])
                new[target] += [v for v in values if v not in new[target]]
            else:
                new[target] = value
        doc.replace_entry(inputs, "success", [("success", _flow_map(new))])
        doc.did(success, base + ("inputs", "success"), f"success.{', success.'.join(sorted(renamed & set(spec)))} are require_files/forbid_files here")

    def _process_idempotency(self, base: tuple, inputs: Any, idempotency: Any, declared: dict) -> None:
        """``{strategy: marker, marker_path: P}`` -> ``{marker: P}``; ``strategy: atomic_dir``
        -> the input ``atomic_dir: {work, publish}``; ``strategy: none`` had no effect."""
        doc = self.flow
        where = base + ("inputs", "idempotency")
        spec = doc.value(idempotency)
        if not isinstance(spec, dict) or "strategy" not in spec:
            return
        strategy = str(spec.get("strategy") or "none").lower()
        if strategy == "marker":
            success = doc.value(doc.get(inputs, "success"))
            marker = spec.get("marker_path") or (success.get("marker_file") if isinstance(success, dict) else None)
            if marker:
                doc.replace_entry(inputs, "idempotency", [("idempotency", _flow_map({"marker": marker}))])
                doc.did(idempotency, where, "idempotency strategy marker is idempotency: {marker: PATH} here")
                return
        elif strategy == "atomic_dir" and "atomic_dir" in declared and spec.get("final_output_dir"):
            atomic = {"work": spec.get("temp_output_dir"), "publish": spec["final_output_dir"]}
            doc.replace_entry(inputs, "idempotency", [("atomic_dir", _flow_map({k: v for k, v in atomic.items() if v}))])
            doc.did(idempotency, where, "idempotency strategy atomic_dir is the input atomic_dir: {work, publish} here")
            return
        elif strategy == "none" and doc.remove_entry(inputs, "idempotency"):
            doc.did(idempotency, where, "idempotency (strategy none) had no effect and is removed")
            return
        doc.todo(
            idempotency,
            where,
            f"idempotency strategy {strategy!r} could not be rewritten",
            "idempotency is {marker: PATH} here; an atomic output directory is the input atomic_dir: {work, publish}",
        )

    def _process_retry(self, base: tuple, step: Any, inputs: Any, retry: Any, declared: dict) -> None:
        """The process's own ``retry`` input: step-level ``retry:`` plus the inputs that say
        which failures may be repeated."""
        doc = self.flow
        where = base + ("inputs", "retry")
        spec = doc.value(retry)
        if not isinstance(spec, dict):
            doc.todo(retry, where, "retry is not an input here", upstream.input_hint("external.process", "retry"))
            return
        codes, on_timeout = spec.get("retry_on_exit_codes"), bool(spec.get("retry_on_timeout", False))
        if not codes and not on_timeout:
            if doc.remove_entry(inputs, "retry"):
                doc.did(retry, where, "retry removed: without retry_on_exit_codes or retry_on_timeout it never retried there")
            return
        if doc.get(step, "retry") is not None or not {"retry_on_exit_codes", "retry_on_timeout"} <= set(declared):
            doc.todo(retry, where, "retry is not an input here", upstream.input_hint("external.process", "retry"))
            return
        policy: dict[str, Any] = {"max_attempts": int(spec.get("max_attempts", 1))}
        policy["delay_seconds"] = spec.get("backoff_seconds", spec.get("sleep_seconds", 0)) or 0
        if float(spec.get("backoff_multiplier", 1) or 1) > 1:
            policy["backoff"] = spec["backoff_multiplier"]
        # Here a timeout is retried unless told otherwise; there it was not.
        replacement = [("retry_on_exit_codes", _render_value(codes if isinstance(codes, list) else [codes]))] if codes else []
        replacement.append(("retry_on_timeout", _render_value(on_timeout)))
        doc.replace_entry(inputs, "retry", replacement)
        doc.add_entry(step, "retry", _flow_map(policy), after="inputs")
        doc.did(retry, where, "retry is the step's retry: here, with retry_on_exit_codes/retry_on_timeout as inputs")
        if spec.get("max_backoff_seconds"):
            doc.todo(retry, where + ("max_backoff_seconds",), "retry delays have no upper bound here", "remove max_backoff_seconds, or lower backoff")

    # profiles: --------------------------------------------------------------------------------

    def _profiles(self) -> None:
        doc = self.profiles
        users: dict[str, set[tuple[str, str]]] = {}
        for resource, profile in self.resource_profiles.items():
            if resource in self.resource_drivers:
                users.setdefault(profile, set()).add(self.resource_drivers[resource])
        for key_node, body in doc.entries(doc.root):
            name = key_node.value
            if not _is_map(body):
                continue
            for section in ("config", "options"):
                self._templates(doc, doc.get(body, section), (name, section), RESOURCE_ROOTS)
            for resource_key, part in doc.entries(doc.get(body, "resources")):
                for section in ("config", "options"):
                    self._templates(doc, doc.get(part, section), (name, "resources", resource_key.value, section), RESOURCE_ROOTS)
            drivers = users.get(name, set())
            if len(drivers) == 1:
                schemas = self._schemas(*next(iter(drivers)))
                for section in ("config", "options"):
                    self._section_keys(doc, body, section, (name,), schemas)
            elif len(drivers) > 1:
                for section in ("config", "options"):
                    for key_node2, _ in doc.entries(doc.get(body, section)):
                        if (section, key_node2.value) in upstream.KEY_RENAMES:
                            doc.todo(
                                key_node2,
                                (name, section, key_node2.value),
                                f"profile {name!r} serves several drivers; {section}.{key_node2.value} is renamed for some of them",
                                "move the key under resources.<name> for each resource",
                            )

    # templates: -------------------------------------------------------------------------------

    def _templates(self, doc: _Document, node: Any, path: tuple, roots) -> None:
        for leaf, where in _scalars(node, path):
            quote = '"' if leaf.style == "'" else "'"
            fixes: list[upstream.TemplateFix] = []

            def transform(text: str, quote: str = quote, fixes: list = fixes) -> str:
                new, found = upstream.rewrite_template(text, roots, quote=quote)
                fixes.extend(found)
                return new

            if doc.set_scalar(leaf, transform):
                seen = set()
                for fix in fixes:
                    if fix.old not in seen:
                        seen.add(fix.old)
                        doc.did(leaf, where, f"{fix.old} -> {fix.new}")


def _scalars(node: Any, path: tuple) -> Iterator[tuple[Any, tuple]]:
    if node is None:
        return
    if _is_scalar(node):
        yield node, path
    elif _is_map(node):
        for key_node, value in node.value:
            yield from _scalars(value, path + (key_node.value,))
    elif _is_seq(node):
        for i, item in enumerate(node.value):
            yield from _scalars(item, path + (i,))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)

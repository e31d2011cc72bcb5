"""Forms written for aetherflow-core 0.0.14, and what each one is here.

One set of tables and rewrites serves two readers: ``validate`` and ``resolve``, which
name the rewrite in the hint of an error, and ``aetherflow migrate``
(:mod:`aetherflow.core.migrate`), which applies it. A form whose replacement does not
exist yet says so ("added by issue 16"); the checks consult the registries first, so a
step input or driver that exists here is never reported as an old form.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .templating import HANDLER_OUTPUT_ROOTS, OUTPUT_ROOTS, WHEN_ROOTS

PLANNED = "added by issue 16"

# -- templates ----------------------------------------------------------------------------

# There a template token was `{{PATH}}` or `{{PATH:DEFAULT}}` (the default taken
# verbatim, also when the value is an empty string).
_TOKEN = re.compile(r"\{\{\s*(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?::(?P<default>[^}]*))?\}\}")
# There `steps.<id>.<key>` read an output; here outputs sit under `steps.<id>.outputs`.
_SHORT_STEP_REF = re.compile(r"\bsteps\.(?P<step>[A-Za-z0-9_]+)\.(?!outputs\b|status\b)(?P<key>[A-Za-z_]\w*)")
ALL_ROOTS = OUTPUT_ROOTS | WHEN_ROOTS | HANDLER_OUTPUT_ROOTS
_LITERALS = frozenset({"true", "false", "none", "True", "False", "None"})


@dataclass(frozen=True)
class TemplateFix:
    """One old-form piece of a template and its rewrite."""

    old: str
    new: str
    why: str

    def describe(self) -> str:
        return f"{self.why}: write `{self.new}` for `{self.old}`"


def jinja_string(value: str, quote: str = "'") -> str:
    """``value`` as a Jinja string literal, quoted with ``quote`` unless it contains it."""
    if quote in value:
        other = '"' if quote == "'" else "'"
        if other not in value:
            quote = other
    return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def template_fixes(text: str, roots: Collection[str], *, quote: str = "'") -> list[TemplateFix]:
    """The old-form pieces of ``text`` (a template seen where ``roots`` are defined)."""
    return rewrite_template(text, roots, quote=quote)[1]


def rewrite_template(text: str, roots: Collection[str], *, quote: str = "'") -> tuple[str, list[TemplateFix]]:
    """``text`` with every old-form token rewritten, and the list of rewrites.

    A name that is not a root (``{{DB_HOST}}``) is read from ``env``. Names are only
    rewritten in templates without ``{% %}`` blocks, whose own variables would look
    like unknown names; old-form templates never had blocks.
    """
    if not isinstance(text, str) or "{{" not in text:
        return text, []
    fixes: list[TemplateFix] = []
    blocks = "{%" in text

    def token(match: re.Match) -> str:
        path, default = match.group("path"), match.group("default")
        head = path.split(".", 1)[0]
        # A root of another place (``result`` in an input) is not an environment variable.
        rooted = head in roots or head in _LITERALS or head in ALL_ROOTS or blocks
        if rooted and default is None:
            return match.group(0)
        expression = path if rooted else f"env.{path}"
        if default is not None:
            new = "{{ " + expression + " | default(" + jinja_string(default, quote) + ") }}"
            why = "a default is written with the default filter"
        else:
            new = "{{ " + expression + " }}"
            why = f"{head!r} is not a template root here; environment variables are read from env"
        fixes.append(TemplateFix(match.group(0), new, why))
        return new

    rewritten = _TOKEN.sub(token, text)
    if "steps" in roots:

        def short(match: re.Match) -> str:
            new = f"steps.{match.group('step')}.outputs.{match.group('key')}"
            fixes.append(TemplateFix(match.group(0), new, "step outputs are read as steps.<id>.outputs.<key>"))
            return new

        rewritten = _SHORT_STEP_REF.sub(short, rewritten)
    return rewritten, fixes


# -- flow file keys -------------------------------------------------------------------------

# YAML paths (with "*" for any index or name) of keys that exist only there.
FLOW_KEYS: dict[tuple[str, ...], str] = {
    ("flow", "locks"): (
        "`locks:` there is `lock:` here: `lock: {key: <name>, ttl_seconds: N}` holds one lock for the whole run; "
        "to guard single steps, wrap them in a with_lock step"
    ),
    ("flow", "workspace", "layout"): (
        "there is no workspace layout here: each job works in <root>/<flow>/<job>/<run>/, which is also what "
        "artifacts_dir() returns to adapted steps; remove `layout`"
    ),
}

STATE_BACKENDS = {"file": "the state here is `backend: sqlite` (a file at `path:`) or `backend: postgres`"}


def flow_key_hint(path: tuple) -> str | None:
    """The rewrite of an unknown flow-file key at ``path`` that was valid there."""
    for pattern, hint in FLOW_KEYS.items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path)):
            return hint
    return None


# -- connectors -------------------------------------------------------------------------------

# (section, key) there -> (section, key) here. Applied only when the connector declares
# the new key and not the old one, so db/postgres keeps its `user`.
KEY_RENAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("config", "bearer_token"): ("config", "token"),
    ("config", "user"): ("config", "username"),
    ("config", "pkey_path"): ("config", "private_key_path"),
    ("options", "timeout"): ("options", "timeout_seconds"),
    ("options", "verify_ssl"): ("config", "verify"),
}

# Keys with no counterpart on a connector here.
KEYS_WITHOUT_COUNTERPART: dict[tuple[str, str], str] = {
    ("options", "retry"): "connectors never retry here: put `retry: {max_attempts: N, delay_seconds: S}` on the step",
    ("options", "retries"): "connectors never retry here: put `retry: {max_attempts: N, delay_seconds: S}` on the step",
    **{
        ("options", key): "SQLAlchemy pool settings have no counterpart here: each thread has one connection of its own"
        for key in ("pool", "pool_size", "max_overflow", "pool_pre_ping", "pool_recycle", "pool_enabled", "connect_args")
    },
}

# (kind, driver) there -> driver here, when the old one is not registered.
DRIVER_RENAMES: dict[tuple[str, str], str] = {
    ("smb", "smbclient"): "smbprotocol",
    ("smb", "pysmb"): "smbprotocol",
    ("archive", "pyzipper"): "zipfile",
    ("archive", "pyminizip"): "zipfile",
    ("archive", "os"): "zipfile",
    ("archive", "external"): "zipfile",
}

DRIVERS_PLANNED: dict[tuple[str, str], str] = {
    ("db", "oracledb"): "Oracle is reached through `driver: sqlalchemy` here, with an oracle+oracledb:// URL",
    ("db", "exasol"): "Exasol is reached through `driver: sqlalchemy` here, with an exa+websocket:// URL (package sqlalchemy-exasol)",
}

# URL schemes of SQLAlchemy URLs that a driver here reads directly.
URL_DRIVERS = {"postgresql": "postgres", "postgres": "postgres", "sqlite": "sqlite3", "duckdb": "duckdb", "mysql": "mysql", "mariadb": "mysql"}
MISSING_KEY_HINTS: dict[tuple[str, str, str], str] = {
    ("smb", "config", "share"): (
        "set `share: <name>` in config: a SHARE:/path prefix in a step does not choose the share here; "
        "it must name the resource's own share (one resource per share)"
    ),
}


def missing_key_hint(kind: str, section: str, key: str) -> str | None:
    return MISSING_KEY_HINTS.get((kind, section, key))


def key_rewrite(section: str, key: str, schemas: Mapping[str, Mapping | None]) -> tuple[str, str] | None:
    """The (section, key) that ``section.key`` becomes for a connector with ``schemas``."""
    target = KEY_RENAMES.get((section, key))
    if target is None:
        return None
    own, other = schemas.get(section), schemas.get(target[0])
    if own is not None and key in own:
        return None
    if other is None or target[1] not in other:
        return None
    return target


def key_hint(section: str, key: str, schemas: Mapping[str, Mapping | None]) -> str | None:
    """What to write instead of an unknown ``section.key`` that was valid there."""
    target = key_rewrite(section, key, schemas)
    if target is not None:
        where = "" if target[0] == section else f" under {target[0]}"
        return f"`{key}` there is `{target[1]}`{where} here"
    return KEYS_WITHOUT_COUNTERPART.get((section, key))


def driver_hint(kind: str, driver: str, registered: Collection[tuple[str, str]]) -> str | None:
    """What to write instead of a driver that existed there and is not registered here."""
    if (kind, driver) in registered:
        return None
    new = DRIVER_RENAMES.get((kind, driver))
    if new is not None and (kind, new) in registered:
        return f"`driver: {driver}` there is `driver: {new}` here"
    return DRIVERS_PLANNED.get((kind, driver))


# -- steps ------------------------------------------------------------------------------------

# Step type there -> (type here, {input there: input here}).
STEP_RENAMES: dict[str, tuple[str, dict[str, str]]] = {
    "sftp_list_files": ("files_list", {}),
    "smb_list_files": ("files_list", {}),
    "sftp_download_files": ("files_download", {}),
    "smb_download_files": ("files_download", {}),
    "sftp_delete_files": ("files_delete", {}),
    "smb_delete_files": ("files_delete", {}),
    "sftp_upload_files": ("files_upload", {"items": "local_files"}),
    "smb_upload_files": ("files_upload", {}),
    "db_fetch_small": ("db_fetch", {}),
    "db_extract_stream": ("db_extract", {"include_header": "header", "fetch_size": "batch_size"}),
    "zip": ("archive_create", {"dest_path": "output", "items": "files", "src_dir": "base_dir"}),
    "unzip": ("archive_extract", {"archives": "archive"}),
}

# Step types there whose inputs differ too much to rename them: (type here, what to do).
STEPS_REWRITTEN_BY_HAND = {
    "excel_fill_small": ("excel_fill", "its inputs are template, output, cells and data (see docs/excel.md)"),
    "excel_fill_from_file": ("excel_fill", "its inputs are template, output, cells and data (see docs/excel.md)"),
}


def step_type_hint(type_name: str, known: Collection[str]) -> str | None:
    if type_name in known:
        return None
    renamed = STEP_RENAMES.get(type_name)
    if renamed is not None and renamed[0] in known:
        new, inputs = renamed
        extra = "; inputs " + ", ".join(f"{a} -> {b}" for a, b in inputs.items()) if inputs else ""
        return f"the step type {type_name} there is {new} here{extra}"
    by_hand = STEPS_REWRITTEN_BY_HAND.get(type_name)
    if by_hand is not None and by_hand[0] in known:
        return f"the step type {type_name} there is {by_hand[0]} here; {by_hand[1]}"
    return None


# Inputs of built-in steps there that a step here does not take: what replaces them.
# Consulted only for inputs the step does not declare, so an input that gains a real
# implementation stops being reported.
INPUT_HINTS: dict[tuple[str, str], str] = {
    ("external.process", "retry"): (
        "retries belong to the step here: `retry: {max_attempts: N, delay_seconds: S}` beside `inputs:`; "
        "retry_on_exit_codes and retry_on_timeout are inputs of external.process that say which failures it may repeat"
    ),
    ("external.process", "outputs"): "step outputs are chosen with the step's own `outputs:` (beside `inputs:`), reading result.<name>",
    **{
        ("db_extract", name): (
            "fields are quoted only when needed and a quote inside one is doubled; "
            "set `escape: CHAR` to escape quotes instead"
        )
        for name in ("quoting", "doublequote")
    },
    **{
        ("db_extract", name): "column types come from the query here (Parquet keeps them); there is no separate dtypes file"
        for name in ("emit_dtypes", "dtypes", "dtypes_json")
    },
}


# Inputs of a step type of the same name that are called differently here:
# (type, input there) -> (input here, what else changed).
INPUT_RENAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("excel_validate_template", "template_path"): ("template", ""),
    ("excel_validate_template", "required_names"): ("cells", "names are looked up as defined names (named cells), not as cell text"),
    ("db_extract", "linefeed"): ("line_terminator", ""),
    ("db_extract", "quotechar"): ("quote", ""),
}


def input_hint(step_type: str, name: str) -> str | None:
    renamed = INPUT_RENAMES.get((step_type, name))
    if renamed is not None:
        return f"`{name}` there is `{renamed[0]}` here" + (f"; {renamed[1]}" if renamed[1] else "")
    return INPUT_HINTS.get((step_type, name))

"""The ``(kind, driver)`` connector registry.

Built-ins are declared as data: the import path of the class, the modules their
driver needs and the package that provides them. Nothing is imported to list them;
a connector's class is imported the first time a resource asks for it, and a missing
driver becomes an error that says what to install. Plugins register classes with
:func:`register_connector`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import MissingDependencyError, PluginError, RegistryError, suggest
from ..registration import current_origin, import_target

_BUILTIN_MODULE = "aetherflow.core.connectors.builtin."


@dataclass(frozen=True)
class ConnectorEntry:
    kind: str
    driver: str
    target: str  # "module:Class"
    summary: str = ""
    requires: tuple[str, ...] = ()  # importable module names the driver needs
    install: str | None = None  # what to install when they are missing
    origin: str = "builtin"
    cls: Any = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.driver)

    def available(self) -> bool:
        return all(importlib.util.find_spec(name) is not None for name in self.requires)


def _builtin(kind: str, driver: str, module: str, cls: str, summary: str, requires=(), install=None) -> ConnectorEntry:
    return ConnectorEntry(kind, driver, f"{_BUILTIN_MODULE}{module}:{cls}", summary, tuple(requires), install)


_BUILTINS: tuple[ConnectorEntry, ...] = (
    _builtin("db", "sqlite3", "db_sqlite3", "SQLiteConnector", "SQLite database file (standard library)", ["sqlite3"]),
    _builtin("db", "duckdb", "db_duckdb", "DuckDBConnector", "DuckDB database, native CSV/Parquet", ["duckdb"], "pip install duckdb"),
    _builtin("db", "postgres", "db_postgres", "PostgresConnector", "PostgreSQL via psycopg 3, COPY fast paths", ["psycopg"], "pip install 'psycopg[binary]'"),
    _builtin("db", "sqlalchemy", "db_sqlalchemy", "SQLAlchemyConnector", "Any database with a SQLAlchemy dialect (Oracle, SQL Server, ...)",
             ["sqlalchemy"], "pip install 'aetherflow[sqlalchemy]' and the dialect's driver package"),
    _builtin("db", "mysql", "db_sqlalchemy", "MySQLConnector", "MySQL and MariaDB via SQLAlchemy (mysqlclient or PyMySQL)", ["sqlalchemy", "pymysql"],
             "pip install 'aetherflow[mysql]'"),
    _builtin("rest", "httpx", "rest_httpx", "HttpxConnector", "HTTP(S) API over a pooled httpx client", ["httpx"], "pip install httpx"),
    _builtin("mail", "smtp", "mail_smtp", "SMTPConnector", "SMTP mail: plain, STARTTLS, implicit TLS", ["smtplib"]),
    _builtin("sftp", "paramiko", "sftp_paramiko", "SFTPConnector", "SFTP files over SSH via paramiko", ["paramiko"], "pip install paramiko"),
    _builtin("smb", "smbprotocol", "smb_smbprotocol", "SMBConnector", "SMB2/3 file shares via smbprotocol", ["smbclient"], "pip install smbprotocol"),
    _builtin("fs", "local", "fs_local", "LocalFilesConnector", "Local directory behind the remote-files API", []),
    _builtin("archive", "zipfile", "archive_zipfile", "ZipArchiveConnector", "Zip archives: create and safe extract", ["zipfile"]),
    _builtin("archive", "tar", "archive_tar", "TarArchiveConnector", "Tar archives (gz, bz2, xz): create and safe extract", ["tarfile"]),
)

_entries: dict[tuple[str, str], ConnectorEntry] = {e.key: e for e in _BUILTINS}
def register_connector(kind: str, driver: str, *, replace: bool = False, summary: str | None = None, requires=()):
    """Class decorator registering a connector for ``(kind, driver)``."""

    def decorate(cls):
        from .base import ConnectorBase

        if not (isinstance(cls, type) and issubclass(cls, ConnectorBase)):
            raise PluginError(f"{cls!r} registered as {kind}/{driver} is not a subclass of ConnectorBase")
        _check_constructor(cls, kind, driver)
        key = (kind, driver)
        if key in _entries and not replace:
            existing = _entries[key]
            raise RegistryError(
                f"connector {kind}/{driver} is already registered by {existing.origin}",
                hint="pass replace=True to register_connector to override it",
            )
        cls.kind, cls.driver = kind, driver
        doc_lines = (cls.__doc__ or "").strip().splitlines()
        text = summary or cls.summary or (doc_lines[0] if doc_lines else "")
        _entries[key] = ConnectorEntry(
            kind,
            driver,
            f"{cls.__module__}:{cls.__qualname__}",
            text,
            tuple(requires),
            None,
            current_origin(cls),
            cls,
        )
        return cls

    return decorate


def saved_state() -> dict[tuple[str, str], ConnectorEntry]:
    return dict(_entries)


def restore_state(state: dict[tuple[str, str], ConnectorEntry]) -> None:
    _entries.clear()
    _entries.update(state)


def _check_constructor(cls, kind: str, driver: str) -> None:
    """Refuse a constructor that cannot be called as ``Cls(config=..., options=...)``
    (such as ``__init__(self, init)``, the shape of aetherflow-core 0.0.14)."""
    import inspect

    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL and p.name not in ("config", "options")]
    if required or not {"config", "options"} <= names:
        raise PluginError(
            f"connector class {cls.__qualname__} ({kind}/{driver}) cannot be built as {cls.__name__}(config=..., options=...)",
            hint="write `def __init__(self, *, config, options)` and call `super().__init__(config=config, options=options)`; "
            "the resource name is self.name (see docs/migrating.md)",
        )


def entries(kind: str | None = None) -> list[ConnectorEntry]:
    return sorted((e for e in _entries.values() if kind is None or e.kind == kind), key=lambda e: e.key)


def get_entry(kind: str, driver: str) -> ConnectorEntry:
    entry = _entries.get((kind, driver))
    if entry is not None:
        return entry
    kinds = sorted({k for k, _ in _entries})
    if kind not in kinds:
        raise RegistryError(
            f"unknown connector kind {kind!r}{suggest(kind, kinds)}",
            hint=f"registered kinds: {', '.join(kinds)}",
        )
    drivers = sorted(d for k, d in _entries if k == kind)
    raise RegistryError(
        f"unknown driver {driver!r} for kind {kind!r}{suggest(driver, drivers)}",
        hint=f"drivers of {kind}: {', '.join(drivers)}",
    )


def load_class(entry: ConnectorEntry):
    """Import the connector class of ``entry``; a missing driver says what to install."""
    missing = [name for name in entry.requires if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(
            f"connector {entry.kind}/{entry.driver} needs {', '.join(missing)}, which is not installed",
            hint=f"install it: {entry.install or 'pip install ' + ' '.join(missing)}",
        )
    if entry.cls is not None:
        return entry.cls
    try:
        cls = import_target(entry.target)
    except ImportError as exc:
        raise MissingDependencyError(
            f"connector {entry.kind}/{entry.driver} cannot be imported: {exc}",
            hint=f"install it: {entry.install or 'pip install ' + (exc.name or entry.target.partition(':')[0])}",
        ) from None
    cls.kind, cls.driver = entry.kind, entry.driver
    _entries[entry.key] = replace(entry, cls=cls)
    return cls


def get_connector_class(kind: str, driver: str):
    return load_class(get_entry(kind, driver))


def declared_schemas(entry: ConnectorEntry) -> tuple[dict | None, dict | None]:
    """The connector's declared config and options schemas (``Field`` tables).

    Built-in connector modules import their drivers lazily, so reading the schema
    imports none of them.
    """
    cls = entry.cls or import_target(entry.target)
    return cls.config_schema, cls.options_schema


def schema_of(entry: ConnectorEntry) -> tuple[dict | None, dict | None]:
    """Config and options schemas as plain dicts."""
    config, options = declared_schemas(entry)
    return _schema_dict(config), _schema_dict(options)


def _schema_dict(schema) -> dict | None:
    return None if schema is None else {key: field.to_dict() for key, field in schema.items()}


def list_connectors(kind: str | None = None, *, with_schema: bool = False) -> list[dict[str, Any]]:
    """One row per registered connector; imports no driver."""
    rows = []
    for entry in entries(kind):
        row = {
            "kind": entry.kind,
            "driver": entry.driver,
            "class": entry.target.replace(":", "."),
            "origin": entry.origin,
            "available": entry.available(),
            "requires": list(entry.requires),
            "install": entry.install,
            "summary": entry.summary,
        }
        if with_schema:
            row["config_schema"], row["options_schema"] = schema_of(entry)
        rows.append(row)
    return rows

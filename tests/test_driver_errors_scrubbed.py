"""Every error a built-in driver raises passes through its scrubber: a password or token
given in the config never appears in a ConnectorError (message, hint, describe()).

Here, for every driver at once: none builds a ConnectorError by hand (all go through
``ConnectorBase.error``, which scrubs), and each driver with secret keys scrubs them
from a translated driver exception that quotes them. Against the real servers, the
faults a user meets (wrong credentials, closed ports, malformed values, server errors
quoting a value) are provoked per driver, beside that driver's tests:
``tests/db/test_postgres_secrets.py``, ``tests/db/test_mysql.py``, ``tests/files/test_sftp_secrets.py``,
``tests/smb/test_smb_secrets.py``, ``tests/mail/test_mail_secrets.py``,
``tests/http/test_http_secrets.py``, ``tests/archive/test_archive_secrets.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aetherflow.core
from aetherflow.core.connectors import registry
from aetherflow.core.redaction import is_secret_key
from tests.helpers import assert_scrubbed

SECRET = "Zq7-distinct-S3cret"
CONNECTORS = Path(aetherflow.core.__file__).parent / "connectors"
ERROR_CLASSES = {"ConnectorError", "ConnectorConfigError", "ConnectorTimeout"}


def test_no_driver_builds_a_connector_error_by_hand():
    """Drivers and families raise through ``self.error`` / ``self.translate``, which scrub."""
    found = []
    for path in [*(CONNECTORS / "builtin").glob("*.py"), *(CONNECTORS / "families").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERROR_CLASSES:
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


def _secret_keys(cls) -> list[str]:
    schema = cls.config_schema or {}
    return [key for key, field in schema.items() if field.secret or is_secret_key(key)]


BUILTINS_WITH_SECRETS = [
    entry for entry in registry.entries() if entry.origin == "builtin" and entry.available() and _secret_keys(registry.load_class(entry))
]


def test_the_drivers_with_secrets_are_all_checked():
    assert {f"{e.kind}/{e.driver}" for e in BUILTINS_WITH_SECRETS} == {
        "archive/zipfile",
        "db/mysql",
        "db/postgres",
        "db/sqlalchemy",
        "mail/smtp",
        "rest/httpx",
        "sftp/paramiko",
        "smb/smbprotocol",
    }


@pytest.mark.parametrize("entry", BUILTINS_WITH_SECRETS, ids=lambda e: f"{e.kind}/{e.driver}")
def test_every_driver_with_secrets_scrubs_them_from_its_errors(entry):
    cls = registry.load_class(entry)
    required = {key: 1 if int in field.types else "x" for key, field in (cls.config_schema or {}).items() if field.required}
    secrets = {key: f"{SECRET}-{key}" for key in _secret_keys(cls)}
    connector = cls(config={**required, **secrets}, options={})
    connector.name = "res"
    quoted = " ".join(secrets.values())
    assert_scrubbed(connector.translated(RuntimeError(f"the driver quotes {quoted}"), "probe"), *secrets.values())
    assert_scrubbed(connector.error(f"a message quoting {quoted}", hint=f"a hint quoting {quoted}"), *secrets.values())

"""The connector contract every driver inherits: settled configuration (empty means not
given, defaults filled once) and one way to turn driver exceptions into scrubbed
ConnectorErrors."""

from __future__ import annotations

import pytest

from aetherflow.core.api import ConnectorBase, ConnectorConfigError, ConnectorError, ConnectorTimeout, Field, StepError
from aetherflow.core.connectors.manager import ConnectorManager
from aetherflow.core.connectors.schema import settle
from aetherflow.core.resolve import ResolvedResource

PASSWORD = "Pa55-w0rd-in-config"
TOKEN = "t0ken-from-header"
URL_PASSWORD = "url-pa55-xyz"


class Sample(ConnectorBase):
    kind, driver = "sample", "test"
    config_schema = {
        "host": Field(str, required=True),
        "port": Field(int, default=7000),
        "password": Field(str, secret=True),
        "login": Field(str, secret=True),
        "headers": Field(dict),
        "dsn": Field(str),
        "labels": Field(list, default=["a"]),
    }
    options_schema = {"timeout_seconds": Field(float, default=5.0)}


def sample(**config) -> Sample:
    connector = Sample(config={"host": "h", **config}, options={})
    connector.name = "res"
    return connector


def test_a_connector_built_directly_sees_defaults_and_no_empty_values():
    connector = sample(port="", password=None, dsn="")
    assert connector.config == {"host": "h", "port": 7000, "labels": ["a"]}
    assert connector.cfg("port") == 7000 and connector.cfg("password") is None
    assert connector.opt("timeout_seconds") == 5.0
    assert connector.config["labels"] is not Sample.config_schema["labels"].default  # a copy


def test_settle_keeps_given_values_and_empty_values_inside_mappings():
    settled = settle({"port": 1, "headers": {"X-Empty": ""}}, Sample.config_schema)
    assert settled == {"port": 1, "headers": {"X-Empty": ""}, "labels": ["a"]}
    assert settle({"anything": "", "kept": 0}, None) == {"kept": 0}


def test_errors_are_scrubbed_of_every_kind_of_configured_secret():
    connector = sample(
        password=PASSWORD,
        login="declared-secret-value",
        headers={"Authorization": f"Bearer {TOKEN}"},
        dsn=f"postgresql://app:{URL_PASSWORD}@db/x",
    )
    error = connector.error(
        f"refused {PASSWORD} / declared-secret-value / {TOKEN} / {URL_PASSWORD}",
        ConnectorConfigError,
        hint=f"check {PASSWORD}",
    )
    text = error.describe()
    assert isinstance(error, ConnectorConfigError)
    assert text.startswith("resource 'res' (sample/test): refused *** / *** / *** / ***")
    for secret in (PASSWORD, "declared-secret-value", TOKEN, URL_PASSWORD):
        assert secret not in text and secret not in str(error)


def test_translate_turns_driver_exceptions_into_classified_scrubbed_errors():
    connector = sample(password=PASSWORD)
    with pytest.raises(ConnectorError) as info:
        with connector.translate("login"):
            raise RuntimeError(f"bad password {PASSWORD!r}")
    assert str(info.value) == "resource 'res' (sample/test): login failed: bad password '***'"
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ConnectorTimeout, match="read failed: slow"):
        with connector.translate("read"):
            raise TimeoutError("slow")
    with pytest.raises(ConnectorError) as info:
        with connector.translate("write", hint=f"a hint naming {PASSWORD}"):
            raise OSError("disk full")
    assert info.value.hint == "a hint naming ***"


def test_translate_lets_aetherflow_errors_through_unchanged():
    connector = sample()
    original = StepError("a step's own failure")
    with pytest.raises(StepError) as info:
        with connector.translate("work"):
            raise original
    assert info.value is original


def test_a_driver_classifies_its_own_exceptions():
    class Picky(Sample):
        def _classify(self, exc):
            if isinstance(exc, KeyError):
                return ConnectorTimeout, "the server is busy", "try later"
            return super()._classify(exc)

    connector = Picky(config={"host": "h"}, options={})
    with pytest.raises(ConnectorTimeout) as info:
        with connector.translate("query"):
            raise KeyError("x")
    assert info.value.detail == "query failed: the server is busy" and info.value.hint == "try later"


def test_the_manager_adds_secrets_only_resolution_knows():
    # A decoded value under a key that does not look secret: only resolution knows.
    resource = ResolvedResource("box", "fs", "local", config={"root": "/srv/decoded-root-value"}, secret_paths={"config.root"})
    manager = ConnectorManager({"box": resource})
    try:
        error = manager["box"].error("cannot use /srv/decoded-root-value")
    finally:
        manager.close()
    assert "decoded-root-value" not in str(error)

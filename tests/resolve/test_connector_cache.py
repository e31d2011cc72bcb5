"""Connector cache scopes: run, process, none, and the disable switch (SPEC 5)."""

from __future__ import annotations

import threading

import pytest

from aetherflow.core.connectors import manager as manager_module
from aetherflow.core.connectors.base import ConnectorBase
from aetherflow.core.connectors.manager import ConnectorManager
from aetherflow.core.connectors.registry import register_connector
from aetherflow.core.errors import ConnectorError
from aetherflow.core.resolve import ResolvedResource

built: list[CountingConnector] = []


@register_connector(kind="test", driver="counting", replace=True)
class CountingConnector(ConnectorBase):
    def __init__(self, *, config, options):
        super().__init__(config=config, options=options)
        self.closes = 0
        built.append(self)

    def close(self):
        self.closes += 1
        super().close()


@pytest.fixture(autouse=True)
def fresh():
    built.clear()
    manager_module._close_process_cache()
    yield
    manager_module._close_process_cache()


def resources(**config) -> dict:
    return {
        "a": ResolvedResource("a", "test", "counting", config=dict(config)),
        "b": ResolvedResource("b", "test", "counting", config={"other": True}),
    }


def test_run_scope_builds_one_instance_per_resource_and_closes_all_at_run_end():
    manager = ConnectorManager(resources(), scope="run")
    first, again, other = manager["a"], manager["a"], manager["b"]
    assert first is again and first is not other
    assert first.name == "a" and other.name == "b"
    assert len(built) == 2
    manager.close()
    assert [c.closes for c in built] == [1, 1]


def test_process_scope_shares_instances_between_runs_with_the_same_configuration():
    run1 = ConnectorManager(resources(host="x"), scope="process")
    run2 = ConnectorManager(resources(host="x"), scope="process")
    run3 = ConnectorManager(resources(host="y"), scope="process")
    assert run1["a"] is run2["a"]
    assert run3["a"] is not run1["a"]
    run1.close()
    run2.close()
    assert all(c.closes == 0 for c in built), "process-scoped connectors outlive a run"
    assert len(built) == 2
    manager_module._close_process_cache()
    assert all(c.closes == 1 for c in built)


def test_none_scope_builds_a_new_instance_per_access_and_closes_each():
    manager = ConnectorManager(resources(), scope="none")
    instances = [manager["a"] for _ in range(3)]
    assert len({id(i) for i in instances}) == 3
    manager.close()
    assert [c.closes for c in built] == [1, 1, 1]


def test_disable_switch_behaves_like_none_whatever_the_scope():
    manager = ConnectorManager(resources(), scope="process", disabled=True)
    assert manager["a"] is not manager["a"]
    manager.close()
    assert len(built) == 2 and all(c.closes == 1 for c in built)


def test_run_scope_is_safe_under_concurrent_first_access():
    manager = ConnectorManager(resources(), scope="run")
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(manager["a"])) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1 and len(built) == 1
    manager.close()


def test_unknown_resource_lists_the_known_ones():
    manager = ConnectorManager(resources(), scope="run")
    with pytest.raises(ConnectorError) as info:
        manager["c"]
    assert "unknown resource 'c'" in info.value.message and "a, b" in info.value.hint
    assert set(manager) == {"a", "b"} and "a" in manager and len(manager) == 2


def test_close_is_idempotent_and_instances_are_context_managers():
    connector = CountingConnector(config={}, options={})
    with connector as same:
        assert same is connector
        connector.connect()
        assert connector.connected
    connector.close()
    assert not connector.connected


def test_cache_scope_from_the_environment_is_validated(tmp_path, cli_env):
    from tests.helpers import run_cli, write_flow

    flow = write_flow(tmp_path / "flow.yaml", "version: 1\nflow: {id: c}\njobs:\n  - id: a\n    steps: [{id: s, type: check_items, inputs: {items: [1]}}]\n")
    result = run_cli("run", flow, env={**cli_env, "AETHERFLOW_CONNECTOR_CACHE_DEFAULT": "forever"})
    assert result.exit_code == 2
    assert "is not a cache scope" in result.stderr and "run, process, none" in result.stderr

import hashlib
import os
from pathlib import Path

import pytest

from tests.helpers import base_env

# The test servers (one session fixture each) and pytester, which checks that plugin.
pytest_plugins = ["tests.services.plugin", "pytester"]

PLUGINS = Path(__file__).parent / "fixtures" / "plugins"


@pytest.fixture(autouse=True)
def _registrations_undone():
    """Steps and connectors a test registers in this process (a plugin loaded by
    ``prepare_flow``, a class registered by hand) are gone after it: later tests, such
    as the generated schema's, see the built-ins only."""
    from aetherflow.core.registration import registrations_undone

    with registrations_undone():
        yield


@pytest.fixture
def cli_env(tmp_path):
    """Environment for CLI runs: isolated work/state roots and the test plugins."""
    return base_env(tmp_path, AETHERFLOW_PLUGIN_PATHS=str(PLUGINS))


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """A 50 MB file of random bytes and its sha256."""
    path = tmp_path_factory.mktemp("big") / "big 50MB ü.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(50):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            fh.write(block)
    return path, digest.hexdigest()

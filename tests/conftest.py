from pathlib import Path

import pytest

from tests.helpers import base_env

PLUGINS = Path(__file__).parent / "fixtures" / "plugins"


@pytest.fixture
def cli_env(tmp_path):
    """Environment for CLI runs: isolated work/state roots and the test plugins."""
    return base_env(tmp_path, AETHERFLOW_PLUGIN_PATHS=str(PLUGINS))

"""The public Python API of aetherflow, for steps and connector plugins.

Everything a plugin needs is importable from here (or from the alias
``aetherflow.core.api``); the modules behind it are private and may move.
"""

from .connectors.base import ConnectorBase
from .connectors.registry import list_connectors, register_connector
from .connectors.schema import Field
from .context import StepContext
from .errors import (
    AetherflowError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorTimeout,
    LockError,
    LockHeldError,
    MissingDependencyError,
    PluginError,
    ResolutionError,
    SpecError,
    StepError,
    StepInputError,
    TemplateError,
    UserError,
)
from .status import Status
from .steps.base import STEP_SKIPPED, STEP_SUCCESS, Input, Step, StepResult
from .steps.registry import list_steps, register_step

__all__ = [
    "STEP_SKIPPED",
    "STEP_SUCCESS",
    "AetherflowError",
    "ConnectorBase",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorTimeout",
    "Field",
    "Input",
    "LockError",
    "LockHeldError",
    "MissingDependencyError",
    "PluginError",
    "ResolutionError",
    "SpecError",
    "Status",
    "Step",
    "StepContext",
    "StepError",
    "StepInputError",
    "StepResult",
    "TemplateError",
    "UserError",
    "list_connectors",
    "list_steps",
    "register_connector",
    "register_step",
]

"""The public Python API of aetherflow, for steps and connector plugins.

Everything a plugin needs is importable from here (or from the alias
``aetherflow.core.api``): the step and connector contracts, the connector families
a new driver subclasses (``db``, ``files``, ``archive``) with their data types, and
the errors. Import from here rather than from the modules behind it.
"""

from .atomic import atomic_open, atomic_path
from .connectors.base import ConnectorBase, ProgressCallback
from .connectors.families.archive import ArchiveConnector, Member, Refused
from .connectors.families.db import DatabaseConnector, ResultColumns
from .connectors.families.files import RemoteFile, RemoteFilesConnector, join_path, name_matches, temp_name
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
from .tabular import TableFormat

__all__ = [
    "STEP_SKIPPED",
    "STEP_SUCCESS",
    "AetherflowError",
    "ArchiveConnector",
    "ConnectorBase",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorTimeout",
    "DatabaseConnector",
    "Field",
    "Input",
    "LockError",
    "LockHeldError",
    "Member",
    "MissingDependencyError",
    "PluginError",
    "ProgressCallback",
    "Refused",
    "RemoteFile",
    "RemoteFilesConnector",
    "ResolutionError",
    "ResultColumns",
    "SpecError",
    "Status",
    "Step",
    "StepContext",
    "StepError",
    "StepInputError",
    "StepResult",
    "TableFormat",
    "TemplateError",
    "UserError",
    "atomic_open",
    "atomic_path",
    "join_path",
    "list_connectors",
    "list_steps",
    "name_matches",
    "register_connector",
    "register_step",
    "temp_name",
]

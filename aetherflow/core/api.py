"""The public Python API of aetherflow, for steps and connector plugins.

Everything a plugin needs is importable from here (or from the alias
``aetherflow.core.api``): the step and connector contracts, the connector families
a new driver subclasses (``db``, ``files``, ``archive``) with their data types, and
the errors, and :func:`run_flow` with its report types for programs (Airflow,
Dagster, scripts) that run a flow in their own process. Import from here rather than from the modules behind it.

Plugins written for aetherflow-core 0.0.14 import a few more names. Those with a
direct equivalent here resolve to it (``RunContext`` is :class:`StepContext`, and so
on; see ``ALIASES``); importing one that has none raises an ImportError that says
what to use instead (``NO_EQUIVALENT``). Both are looked up on first use, so they
cost nothing to plugins that do not use them.
"""

from .atomic import atomic_open, atomic_path
from .cancel import CancelToken, current_cancel
from .connectors.base import Classification, ConnectorBase, ProgressCallback
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
    Interrupted,
    LockError,
    LockHeldError,
    MissingDependencyError,
    PluginError,
    ProfileError,
    ResolutionError,
    RunFailed,
    SpecError,
    StepError,
    StepInputError,
    TemplateError,
    UserError,
)
from .inprocess import JobReport, RunReport, StepReport, run_flow
from .status import Status
from .steps.base import STEP_SKIPPED, STEP_SUCCESS, Input, Step, StepResult
from .steps.registry import list_steps, register_step
from .tabular import TableFormat

# Names of aetherflow-core 0.0.14's API -> "module:attribute" of the equivalent here.
ALIASES: dict[str, str] = {
    "RunContext": "aetherflow.core.context:StepContext",
    "Settings": "aetherflow.core.settings:Settings",
    "new_run_id": "aetherflow.core.runner:new_run_id",
    "get_step": "aetherflow.core.steps.registry:get_step",
    "get_connector": "aetherflow.core.connectors.registry:get_connector_class",
    "RemoteFileMeta": "aetherflow.core.connectors.families.files:RemoteFile",
    "FlowSpec": "aetherflow.core.spec.models:FlowSpec",
    "FlowMetaSpec": "aetherflow.core.spec.models:FlowMeta",
    "JobSpec": "aetherflow.core.spec.models:JobSpec",
    "StepSpec": "aetherflow.core.spec.models:StepSpec",
    "ResourceSpec": "aetherflow.core.spec.models:ResourceSpec",
    "WorkspaceSpec": "aetherflow.core.spec.models:WorkspaceSpec",
    "StateSpec": "aetherflow.core.spec.models:StateSpec",
    "CleanupPolicy": "aetherflow.core.spec.models:CleanupPolicy",
}

# Names of that API with no equivalent here -> what to write instead.
NO_EQUIVALENT: dict[str, str] = {
    "ConnectorInit": (
        "connectors here are built as Cls(*, config, options) with resolved values, and the "
        "resource name is self.name: write `def __init__(self, *, config, options)` and call "
        "`super().__init__(config=config, options=options)`"
    ),
    "require": (
        "declare the modules a connector needs with @register_connector(..., requires=[\"module\"]) "
        "and import them inside _connect(); a missing one is reported with what to install"
    ),
    "require_attr": (
        "declare the modules a connector needs with @register_connector(..., requires=[\"module\"]) "
        "and import them inside _connect(); a missing one is reported with what to install"
    ),
    "LocksSpec": "a flow lock here is flow.lock: {key, ttl_seconds, on_locked}; per-step locks use the with_lock step",
    "LockScope": "locks here have no scope: flow.lock guards a whole run, the with_lock step guards one step",
}


def __getattr__(name: str):
    target = ALIASES.get(name)
    if target is not None:
        from .registration import import_target

        value = import_target(target)
        globals()[name] = value
        return value
    instead = NO_EQUIVALENT.get(name)
    if instead is not None:
        raise ImportError(f"aetherflow.core.api has no {name}: {instead} (see docs/migrating.md)", name=name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(ALIASES))


__all__ = [
    "STEP_SKIPPED",
    "STEP_SUCCESS",
    "AetherflowError",
    "ArchiveConnector",
    "CancelToken",
    "Classification",
    "ConnectorBase",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorTimeout",
    "DatabaseConnector",
    "Field",
    "Input",
    "Interrupted",
    "JobReport",
    "LockError",
    "LockHeldError",
    "Member",
    "MissingDependencyError",
    "PluginError",
    "ProfileError",
    "ProgressCallback",
    "Refused",
    "RemoteFile",
    "RemoteFilesConnector",
    "ResolutionError",
    "ResultColumns",
    "RunFailed",
    "RunReport",
    "SpecError",
    "Status",
    "Step",
    "StepContext",
    "StepError",
    "StepInputError",
    "StepReport",
    "StepResult",
    "TableFormat",
    "TemplateError",
    "UserError",
    "atomic_open",
    "atomic_path",
    "current_cancel",
    "join_path",
    "list_connectors",
    "list_steps",
    "name_matches",
    "register_connector",
    "register_step",
    "run_flow",
    "temp_name",
]

"""The error hierarchy.

Every error the program raises on purpose is an :class:`AetherflowError`. Each class
carries an ``exit_code`` so the CLI maps errors to exit codes in one place, and enough
context (file, line, YAML path, resource, kind, driver) to be acted upon.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass


def closest(name: str, candidates) -> str | None:
    """The candidate closest to ``name`` (a likely typo of it), or None."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def suggest(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    match = closest(name, candidates)
    return f" (did you mean {match!r}?)" if match else ""


@dataclass(frozen=True)
class Location:
    """Where a problem sits in a YAML file. ``line``/``column`` are 1-based."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def describe(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.path:
            where += f" at {self.path}"
        return where


@dataclass(frozen=True)
class Problem:
    """One finding of spec validation."""

    location: Location
    message: str
    hint: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self.location)
        data.update(message=self.message, hint=self.hint)
        return data

    def describe(self, prefix: str = "") -> str:
        text = f"{self.location.describe()}: {prefix}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class AetherflowError(Exception):
    """Base of all deliberate errors. ``exit_code`` follows SPEC section 7."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location

    def describe(self) -> str:
        text = self.message
        if self.location is not None:
            text = f"{self.location.describe()}: {text}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.describe()


class UserError(AetherflowError):
    """Invalid input: spec, profile, template, plugin, usage. Exit code 2."""

    exit_code = 2


class SpecError(UserError):
    """The flow file is malformed. Carries every problem found, in file order."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(
            problems, key=lambda p: (p.location.line or 0, p.location.column or 0, p.location.path)
        )
        first = self.problems[0]
        super().__init__(first.message, hint=first.hint, location=first.location)

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.problems)


class ResolutionError(UserError):
    """A resource, profile, template or secret could not be resolved."""


class ResolutionErrors(ResolutionError):
    """Several resources could not be resolved: every error, in the flow's order."""

    def __init__(self, errors: list[AetherflowError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, hint=first.hint, location=first.location)
        self.exit_code = max(error.exit_code for error in self.errors)

    def describe(self) -> str:
        return "\n".join(error.describe() for error in self.errors)


class TemplateError(ResolutionError):
    """A template failed to render (missing name, unsafe access, syntax)."""


class ProfileError(ResolutionError):
    """Profiles could not be loaded or an unknown profile was selected."""


class SecretsError(ResolutionError):
    """The secrets provider failed to load or to decode a value."""


class VariableError(UserError):
    """A run variable is undeclared, of the wrong type, missing, or differs on resume."""


class SelectionError(UserError):
    """--job / --only / --exclude name an unknown job, or leave a job without the outputs it needs."""


class PersistError(UserError):
    """A value a step asks to persist cannot be stored (it holds a secret)."""


class PluginError(UserError):
    """A plugin failed to import or registered something invalid."""


class RegistryError(UserError):
    """Unknown kind/driver, duplicate registration."""


class MissingDependencyError(UserError):
    """A connector's library is not installed; the message says what to install."""


class ConnectorError(AetherflowError):
    """A connector failed talking to its system. Names resource, kind and driver."""

    def __init__(
        self,
        message: str,
        *,
        resource: str | None = None,
        kind: str | None = None,
        driver: str | None = None,
        hint: str | None = None,
    ):
        self.resource = resource
        self.kind = kind
        self.driver = driver
        prefix = ""
        if resource or kind:
            prefix = f"resource {resource!r} ({kind}/{driver}): " if resource else f"{kind}/{driver}: "
        super().__init__(prefix + message, hint=hint)
        self.detail = message


class ConnectorConfigError(ConnectorError):
    """A connector was given a configuration it cannot use."""


class ConnectorTimeout(ConnectorError):
    """The remote system did not answer in time."""


class StepError(AetherflowError):
    """A step failed in a way it understands (bad input at run time, no data, ...).

    ``retryable=False`` says another attempt cannot help (the step knows why it failed):
    a ``retry`` policy then stops at this attempt.
    """

    def __init__(self, message: str, *, hint: str | None = None, location: Location | None = None, retryable: bool = True):
        super().__init__(message, hint=hint, location=location)
        self.retryable = retryable


class StepInputError(StepError, UserError):
    """A step's inputs do not match its declaration (invalid input: exit code 2)."""


def retryable(exc: BaseException) -> bool:
    """Whether a step's ``retry`` policy may run it again after ``exc``: never after
    invalid input, nor after a failure its step marked as final."""
    return not isinstance(exc, UserError) and getattr(exc, "retryable", True) is not False


class StateError(AetherflowError):
    """The state store cannot be opened or written."""


class LockError(AetherflowError):
    """A lock could not be acquired or was lost."""


class LockHeldError(LockError):
    """The flow lock is held by another run (``on_locked: fail``). Exit code 3."""

    exit_code = 3


class RunFailed(AetherflowError):
    """A run finished FAILED (exit code 1): raised by ``run_flow``, whose ``report``
    (a :class:`~aetherflow.core.inprocess.RunReport`) holds every job's and step's status."""

    exit_code = 1

    def __init__(self, message: str, *, report, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.report = report


class Interrupted(AetherflowError):
    """SIGINT/SIGTERM stopped the run. Exit code 130."""

    exit_code = 130

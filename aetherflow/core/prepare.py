"""The resolution pipeline up to connectors, shared by ``run`` and ``resolve``.

load spec -> env snapshot -> settings -> plugins -> secrets provider -> run variables ->
profiles -> resources (templates, decode, schema, redaction) -> fingerprint. Everything
that can be wrong with the input fails here, before any job starts. An unknown run
profile and a resource that does not resolve are kept on the :class:`PreparedFlow`
rather than raised: ``resolve`` reports them, and a run raises them inside its own
lifecycle, where the flow's handlers still get to run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .env import EnvSnapshot
from .errors import AetherflowError, ProfileError, ResolutionErrors
from .plugins import load_plugins
from .profiles import Profiles, load_profiles
from .redaction import Scrubber, is_secret_key
from .resolve import ResolvedResource, ResourceResolver, fingerprint
from .secrets import SecretsProvider, load_provider
from .settings import Settings
from .spec import FlowDocument, load_flow
from .variables import RunVariables, VarInput, bind_variables


@dataclass
class Invocation:
    """What the user asked for, before anything is resolved."""

    flow_path: str | None = None
    profile: str | None = None
    profiles_file: str | None = None
    env_files: Sequence[str] = ()
    base_env: Mapping[str, str] | None = None  # default: os.environ (copied)
    log_format: str | None = None
    log_level: str | None = None
    #: values given for the flow's variables, in increasing precedence (files, then --var)
    variables: Sequence[VarInput] = ()
    max_parallel: int | None = None  # jobs at once; overrides AETHERFLOW_MAX_PARALLEL and flow.max_parallel


@dataclass
class Environment:
    """Stages 1-2 plus plugins and secrets: what every command needs."""

    env: EnvSnapshot
    settings: Settings
    provider: SecretsProvider | None
    scrubber: Scrubber = field(default_factory=Scrubber)


@dataclass
class PreparedFlow:
    environment: Environment
    document: FlowDocument
    profiles: Profiles
    resources: list[ResolvedResource]
    fingerprint: str
    variables: RunVariables = field(default_factory=RunVariables)
    #: the run's --profile / AETHERFLOW_PROFILE names no profile (every resource failed with it)
    profile_error: ProfileError | None = None
    resource_names: list[str] | None = None

    @property
    def env(self) -> EnvSnapshot:
        return self.environment.env

    @property
    def settings(self) -> Settings:
        return self.environment.settings

    @property
    def scrubber(self) -> Scrubber:
        return self.environment.scrubber

    def failed(self) -> list[ResolvedResource]:
        return [r for r in self.resources if r.error is not None]

    def resolver(self, *, run_profile: str | None = None, variables: RunVariables | None = None) -> ResourceResolver:
        return ResourceResolver(
            self.document,
            self.env,
            self.profiles,
            run_profile=run_profile,
            provider=self.environment.provider,
            scrubber=self.scrubber,
            variables=(variables or self.variables).values,
        )

    def with_variables(self, variables: RunVariables) -> PreparedFlow:
        """The same flow resolved with other variable values (a resumed run's stored ones)."""
        if variables.values == self.variables.values:
            return self
        self.scrubber.add(*variables.secret_values())
        resources = self.resolver(run_profile=self.settings.profile, variables=variables).resolve_all(self.resource_names)
        return replace(self, resources=resources, fingerprint=fingerprint(self.document.spec.flow.id, resources), variables=variables)

    def handler_resources(self) -> list[ResolvedResource]:
        """The resources handlers use: as resolved, or, when the run's profile is unknown,
        resolved without it (a handler reporting that failure must still reach its mail server)."""
        if self.profile_error is None:
            return self.resources
        return self.resolver(run_profile=None).resolve_all(self.resource_names)


def prepare_environment(invocation: Invocation, scrubber: Scrubber | None = None, *, plugins: bool = True) -> Environment:
    env = EnvSnapshot.capture(invocation.env_files, invocation.base_env)
    settings = Settings.from_env(
        env,
        profile=invocation.profile,
        profiles_file=invocation.profiles_file,
        log_format=invocation.log_format,
        log_level=invocation.log_level,
        max_parallel=invocation.max_parallel,
    )
    scrubber = Scrubber() if scrubber is None else scrubber
    provider = load_provider(settings.secrets_module, settings.secrets_path)
    if provider is not None:
        expanded = provider.expand_env(env)
        if expanded is not None:
            changed = {k: v for k, v in expanded.values.items() if env.get(k) != v}
            env = env.overlay(changed, "secrets")
            # What the provider added is data unless it says otherwise or the name says so:
            # scrubbing every added value masked words like "prod" everywhere.
            scrubber.add(*(v for k, v in expanded.values.items() if k in expanded.secret_names or is_secret_key(k)))
    if plugins:
        load_plugins(settings.plugin_paths, strict=settings.plugin_strict)
    return Environment(env, settings, provider, scrubber)


def prepare_flow(
    invocation: Invocation,
    *,
    environment: Environment | None = None,
    resource_names: list[str] | None = None,
) -> PreparedFlow:
    """Resolve a flow's resources. Raises on the first unusable input."""
    environment = environment or prepare_environment(invocation)
    document = load_flow(invocation.flow_path)
    settings = environment.settings
    profiles = load_profiles(
        flow_path=Path(invocation.flow_path),
        profiles_file=invocation.profiles_file,
        profiles_json=settings.profiles_json,
        env_profiles_file=settings.profiles_file,
    )
    variables = bind_variables(document.spec.vars, invocation.variables, flow_locate=document.locate)
    environment.scrubber.add(*variables.secret_values())
    profile_error = None
    if settings.profile:
        try:
            profiles.get(settings.profile, wanted_by="--profile / AETHERFLOW_PROFILE")
        except ProfileError as exc:
            profile_error = exc
    resolver = ResourceResolver(
        document,
        environment.env,
        profiles,
        run_profile=settings.profile,
        provider=environment.provider,
        scrubber=environment.scrubber,
        variables=variables.values,
    )
    resources = resolver.resolve_all(resource_names)
    return PreparedFlow(
        environment,
        document,
        profiles,
        resources,
        fingerprint(document.spec.flow.id, resources),
        variables,
        profile_error,
        resource_names,
    )


def raise_resolution_errors(prepared: PreparedFlow) -> None:
    """The profiles' error, else every resource that could not be resolved, as ``resolve``
    lists them."""
    if prepared.profile_error is not None:
        raise prepared.profile_error
    errors: list[AetherflowError] = [resource.error for resource in prepared.failed()]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ResolutionErrors(errors)

"""Stages 3 to 7 for resources: profile merge, templates, decode, schema, redaction.

``resolve_resource`` follows the pipeline in order and records, for every leaf of
``config`` and ``options``, where its value came from (``flow``, ``profile:<name>``,
``profile:<name>.resources.<resource>``, ``env:<VAR>``, ``vars.<name>`` for a run
variable, ``decoded``, ``default``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import upstream
from .connectors import registry
from .connectors.schema import CoercionError, Schema, coerce, is_unset, settle, unknown_key
from .decode import DecodeMarks, DecodeSpecError, parse_decode
from .env import EnvSnapshot
from .errors import AetherflowError, Location, ResolutionError, SecretsError, TemplateError, suggest
from .profiles import Profiles, merge_into
from .redaction import Scrubber, is_secret_key, redact_mapping, secret_leaves, url_passwords_in
from .secrets import SecretsProvider
from .spec import FlowDocument
from .templating import ENGINE, EnvView, VarsView

SECTIONS = ("config", "options")


@dataclass
class ResolvedResource:
    name: str
    kind: str
    driver: str
    profile: str | None = None
    connector: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    env_origins: dict[str, str] = field(default_factory=dict)
    secret_paths: set[str] = field(default_factory=set)
    error: AetherflowError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def secret_values(self) -> list[Any]:
        values = []
        for path in self.secret_paths:
            section, _, rest = path.partition(".")
            value = _get_path(self.config if section == "config" else self.options, rest)
            if value is not None:
                values.extend(secret_leaves(value))
        for section in (self.config, self.options):
            values.extend(url_passwords_in(section))
        return values

    def redacted(self) -> tuple[dict[str, Any], dict[str, Any]]:
        config_marks = {p[len("config.") :] for p in self.secret_paths if p.startswith("config.")}
        option_marks = {p[len("options.") :] for p in self.secret_paths if p.startswith("options.")}
        return redact_mapping(self.config, config_marks), redact_mapping(self.options, option_marks)

    def cache_key(self) -> str:
        """Identity of the resolved configuration (for the process-wide connector cache)."""
        payload = json.dumps([self.kind, self.driver, self.config, self.options], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def _get_path(data: Mapping, dotted: str) -> Any:
    current: Any = data
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


class ResourceResolver:
    """Resolves the resources of one flow document for one invocation."""

    def __init__(
        self,
        document: FlowDocument,
        env: EnvSnapshot,
        profiles: Profiles,
        *,
        run_profile: str | None,
        provider: SecretsProvider | None,
        scrubber: Scrubber,
        variables: Mapping[str, Any] | None = None,
    ):
        self.variables = dict(variables or {})
        self.document = document
        self.env = env
        self.profiles = profiles
        self.run_profile = run_profile
        self.provider = provider
        self.scrubber = scrubber

    def resolve_all(self, names: list[str] | None = None) -> list[ResolvedResource]:
        resources = self.document.spec.resources
        if names:
            unknown = [n for n in names if n not in resources]
            if unknown:
                raise ResolutionError(
                    f"unknown resource {unknown[0]!r}{suggest(unknown[0], resources)}",
                    hint=f"resources of this flow: {', '.join(resources) or 'none'}",
                )
        selected = names or list(resources)
        return [self.resolve_resource(name) for name in selected]

    def resolve_resource(self, name: str) -> ResolvedResource:
        spec = self.document.spec.resources[name]
        resolved = ResolvedResource(name=name, kind=spec.kind, driver=spec.driver)
        try:
            self._resolve(spec, resolved)
        except SecretsError:
            raise
        except AetherflowError as exc:
            resolved.error = exc
        # Register secrets even when a later stage failed: an error message may quote them.
        self.scrubber.add(*resolved.secret_values())
        return resolved

    def _resolve(self, spec, resolved: ResolvedResource) -> None:
        name = resolved.name
        profile_name = spec.profile or self.run_profile
        resolved.profile = profile_name

        merged = {section: copy.deepcopy(getattr(spec, section)) for section in SECTIONS}
        sources: dict[str, str] = {}
        origins: dict[str, Any] = {}  # leaf path -> locator of its YAML node
        for section in SECTIONS:
            merge_into({}, merged[section], "flow", sources, section)
        decode_marks = self._decode_marks(spec.decode, ("resources", name, "decode"), None).marked

        if profile_name:
            wanted_by = f"resource {name!r}" if spec.profile else "--profile / AETHERFLOW_PROFILE"
            profile = self.profiles.get(profile_name, wanted_by=wanted_by)
            layers = [
                (profile, f"profile:{profile_name}", (profile_name,)),
                (
                    (profile.get("resources") or {}).get(name) or {},
                    f"profile:{profile_name}.resources.{name}",
                    (profile_name, "resources", name),
                ),
            ]
            for layer, label, locator in layers:
                for section in SECTIONS:
                    merge_into(merged[section], layer.get(section) or {}, label, sources, section)
                origins.update({path: ("profile", locator) for path, source in sources.items() if source == label})
                marks = self._decode_marks(layer.get("decode"), locator + ("decode",), self.profiles)
                decode_marks = (decode_marks | marks.marked) - marks.unmarked

        # Templates: one pass over each leaf, only `env` visible.
        for section in SECTIONS:
            merged[section] = self._render_section(merged[section], section, sources, origins, resolved)

        # Secrets decoder on marked leaves only.
        for path in sorted(decode_marks):
            section, _, rest = path.partition(".")
            value = _get_path(merged[section], rest)
            if value is None:
                continue
            if self.provider is None:
                raise SecretsError(
                    f"resource {name!r} marks {path} for decoding but no secrets provider is configured",
                    hint="set AETHERFLOW_SECRETS_MODULE or AETHERFLOW_SECRETS_PATH",
                )
            decoded = self.provider.decode(str(value), what=f"{name}.{path}")
            self.scrubber.add(decoded)
            _set_path(merged[section], rest, decoded)
            sources[path] = "decoded"
            resolved.secret_paths.add(path)

        resolved.config, resolved.options = merged["config"], merged["options"]
        resolved.sources = sources

        # Registry and declared schema.
        entry = registry.get_entry(spec.kind, spec.driver)
        cls = registry.load_class(entry)
        resolved.connector = f"{cls.__module__}.{cls.__qualname__}"
        schemas = {"config": cls.config_schema, "options": cls.options_schema}
        for section, schema in schemas.items():
            self._apply_schema(resolved, section, schema, origins, schemas)
        for section in SECTIONS:
            for path in _flat(getattr(resolved, section)):
                if is_secret_key(path.rsplit(".", 1)[-1]):
                    resolved.secret_paths.add(f"{section}.{path}")

    def _render_section(self, data: dict, section: str, sources: dict, origins: dict, resolved: ResolvedResource) -> dict:
        def walk(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, f"{path}.{k}") for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, path) for v in value]
            if not ENGINE.is_template(value):
                return value
            location = self._locate(origins.get(path), path, resolved.name)
            rewritten, fixes = upstream.rewrite_template(value, ("env", "vars"))
            if fixes:
                # Profiles are read only here, so their old forms are caught here, not by validate.
                raise TemplateError(f"{fixes[0].why}: {fixes[0].old}", hint=f"write {rewritten}", location=location)
            view, variables = EnvView(self.env), VarsView(self.variables)
            rendered = ENGINE.render(value, {"env": view, "vars": variables}, location)
            if view.accessed:
                var = view.accessed[0]
                sources[path] = f"env:{var}"
                resolved.env_origins[var] = self.env.origin(var)
            elif variables.accessed:
                sources[path] = f"vars.{variables.accessed[0]}"
            return rendered

        return walk(data, section)

    def _decode_marks(self, decode: Any, where: tuple, profiles: Profiles | None) -> DecodeMarks:
        try:
            return parse_decode(decode)
        except DecodeSpecError as exc:
            path = where + exc.path
            index = profiles if profiles is not None else self.document.index
            location = index.locate(path, key=exc.at_key)
            raise ResolutionError(exc.message, hint=exc.hint, location=location) from None

    def _locate(self, origin, path: str, name: str, *, key: bool = False) -> Location:
        """Where a leaf was written: the flow file or the profiles file."""
        parts = tuple(path.split("."))
        if origin is None or origin[0] == "flow":
            return self.document.index.locate(("resources", name) + parts, key=key)
        return self.profiles.locate(origin[1] + parts)

    def _apply_schema(self, resolved: ResolvedResource, section: str, schema: Schema | None, origins: dict, schemas: dict) -> None:
        """Check ``section`` against ``schema``: no unknown key, required keys given,
        values coerced. Keys left empty are dropped and defaults filled first
        (:func:`settle`), so the result is what the connector will read."""
        given = getattr(resolved, section)
        for key in given if schema is not None else ():
            if key not in schema:
                path = f"{section}.{key}"
                message, hint = unknown_key(resolved.name, resolved.kind, resolved.driver, section, key, schemas)
                raise ResolutionError(message, hint=hint, location=self._locate(origins.get(path), path, resolved.name, key=True))
        values = settle(given, schema)
        setattr(resolved, section, values)
        defaulted = {key for key in values if is_unset(given.get(key))}
        for key in given:
            if is_unset(given[key]):
                resolved.sources.pop(f"{section}.{key}", None)
        for key in defaulted:
            resolved.sources[f"{section}.{key}"] = "default"
        for key, fld in (schema or {}).items():
            path = f"{section}.{key}"
            if key in defaulted:
                continue
            if key not in values:
                if fld.required:
                    raise ResolutionError(
                        f"resource {resolved.name!r}: missing required {section} key {key!r} for {resolved.kind}/{resolved.driver}",
                        hint=upstream.missing_key_hint(resolved.kind, section, key) or (f"{key}: {fld.help}" if fld.help else None),
                        location=self.document.index.locate(("resources", resolved.name, section)),
                    )
                continue
            try:
                values[key] = coerce(values[key], fld)
            except CoercionError as exc:
                source = resolved.sources.get(path, "flow")
                raise ResolutionError(
                    f"resource {resolved.name!r}: {path} ({source}): {exc}",
                    hint=f"{key}: {fld.help}" if fld.help else None,
                    location=self._locate(origins.get(path), path, resolved.name, key=True),
                ) from None
            if fld.secret:
                resolved.secret_paths.add(path)


def _flat(data: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in (data or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, path + "."))
        else:
            out[path] = value
    return out


def _set_path(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    current = data
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def fingerprint(flow_id: str, resources: list[ResolvedResource]) -> str:
    """A hash over the resolved configuration; secret leaves enter as salted hashes."""
    items = []
    for res in sorted(resources, key=lambda r: r.name):
        sections = {}
        for section in SECTIONS:
            flat = _flat(getattr(res, section))
            for path, value in flat.items():
                if f"{section}.{path}" in res.secret_paths or is_secret_key(path.rsplit(".", 1)[-1]):
                    salt = f"aetherflow:{flow_id}:{res.name}:{section}.{path}:"
                    flat[path] = "sha256:" + hashlib.sha256((salt + json.dumps(value, default=str)).encode()).hexdigest()
            sections[section] = flat
        items.append([res.name, res.kind, res.driver, res.profile, sections])
    payload = json.dumps(items, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:32]

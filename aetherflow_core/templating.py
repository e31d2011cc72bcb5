"""Stage 4: templates. Jinja2 in a sandbox with strict undefined.

A value that is exactly one ``{{ expression }}`` keeps the expression's native type;
mixed text renders to a string. Each leaf is rendered once: values that come out of a
template (an environment variable, a step output, a decoded secret) are data and are
never rendered again. Errors name the file, line, YAML path, template and missing name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import Location, TemplateError

#: The names a template can read, by where it is written (SPEC 4.4): resources and flow
#: metadata, a job's ``when``, step inputs, step outputs.
RESOURCE_ROOTS = frozenset({"env"})
WHEN_ROOTS = frozenset({"env", "jobs", "run_id", "flow_id"})
STEP_ROOTS = frozenset({"env", "steps", "job", "jobs", "run_id", "flow_id", "workspace"})
OUTPUT_ROOTS = STEP_ROOTS | {"result"}

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_MISSING_NAME = re.compile(r"'([^']+)' is undefined")
_MISSING_ATTR = re.compile(r"has no attribute '([^']+)'")


class NamedMapping(dict):
    """A dict that knows its dotted name, so a missing key is reported as ``steps.a.outputs.x``."""

    __slots__ = ("name",)

    def __init__(self, name: str, data: Mapping[str, Any] = ()):
        super().__init__(data)
        self.name = name


class EnvView(Mapping[str, str]):
    """The ``env`` root: read-only, and records which variables a template read."""

    name = "env"

    def __init__(self, env: Mapping[str, str]):
        self._env = env
        self.accessed: list[str] = []

    def __getitem__(self, key: str) -> str:
        value = self._env[key]
        self.accessed.append(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._env:
            return self[key]
        return default

    def __contains__(self, key: object) -> bool:
        return key in self._env

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def named(name: str, data: Any) -> Any:
    """Wrap nested mappings so missing keys report their full dotted path."""
    if isinstance(data, Mapping) and not isinstance(data, (NamedMapping, EnvView)):
        return NamedMapping(name, {k: named(f"{name}.{k}", v) for k, v in data.items()})
    return data


def _make_environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class NamedUndefined(StrictUndefined):
        __slots__ = ()

        @property
        def _undefined_message(self) -> str:
            owner = self._undefined_obj
            owner_name = getattr(owner, "name", None) if isinstance(owner, (NamedMapping, EnvView)) else None
            if owner_name and isinstance(self._undefined_name, str):
                return f"'{owner_name}.{self._undefined_name}' is undefined"
            return super()._undefined_message

    class FlowSandbox(ImmutableSandboxedEnvironment):
        """Item lookup wins over attributes for our mappings, so an output named
        ``items`` or ``keys`` is the output, not the dict method."""

        def getattr(self, obj, attribute):
            if isinstance(obj, (NamedMapping, EnvView)) and isinstance(attribute, str) and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

    return FlowSandbox(undefined=NamedUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateEngine:
    """Compiles and caches templates; one engine per process is enough."""

    def __init__(self):
        self._env = None
        self._templates: dict[str, Any] = {}
        self._expressions: dict[str, Any] = {}

    @property
    def environment(self):
        if self._env is None:
            self._env = _make_environment()
        return self._env

    @staticmethod
    def is_template(value: Any) -> bool:
        return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)

    def check_syntax(self, text: str) -> str | None:
        """A syntax error message, or None."""
        from jinja2 import TemplateSyntaxError

        # Parsing finds every syntax error at a fifth of the cost of compiling.
        try:
            self.environment.parse(text)
        except TemplateSyntaxError as exc:
            return exc.message or str(exc)
        return None

    def _compile(self, text: str):
        match = _SINGLE_EXPRESSION.match(text)
        if match and "{{" not in match.group("expr") and "}}" not in match.group("expr"):
            compiled = self._expressions.get(text)
            if compiled is None:
                compiled = self.environment.compile_expression(match.group("expr").strip(), undefined_to_none=False)
                self._expressions[text] = compiled
            return ("expr", compiled)
        compiled = self._templates.get(text)
        if compiled is None:
            compiled = self.environment.from_string(text)
            self._templates[text] = compiled
        return ("text", compiled)

    def render(self, text: Any, context: Mapping[str, Any], location: Location | None = None) -> Any:
        """Render one value. Non-template values are returned unchanged."""
        if not self.is_template(text):
            return text
        from jinja2 import TemplateError as JinjaTemplateError
        from jinja2 import Undefined
        from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

        try:
            mode, compiled = self._compile(text)
            if mode == "expr":
                result = compiled(**context)
                if isinstance(result, Undefined):
                    result._fail_with_undefined_error()
                return result
            return compiled.render(**context)
        except SecurityError as exc:
            raise TemplateError(
                f"unsafe template refused: {exc}",
                hint="templates may not reach private attributes or internals",
                location=location,
            ) from None
        except UndefinedError as exc:
            missing = self._missing_name(str(exc))
            roots = ", ".join(sorted(context))
            raise TemplateError(
                f"template {text!r}: {missing} is undefined",
                hint=f"available roots here: {roots}; use '| default(...)' for optional values",
                location=location,
            ) from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template {text!r}: syntax error: {exc.message}", location=location) from None
        except JinjaTemplateError as exc:
            raise TemplateError(f"template {text!r}: {exc}", location=location) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise TemplateError(f"template {text!r}: {type(exc).__name__}: {exc}", location=location) from None

    @staticmethod
    def _missing_name(message: str) -> str:
        match = _MISSING_NAME.search(message)
        if match:
            return f"'{match.group(1)}'"
        match = _MISSING_ATTR.search(message)
        if match:
            return f"'{match.group(1)}'"
        return message

    def render_tree(
        self,
        data: Any,
        context: Mapping[str, Any],
        locate: Callable[[tuple], Location | None],
        path: tuple = (),
    ) -> Any:
        """Render every string leaf of a JSON-like tree once."""
        if isinstance(data, Mapping):
            return {k: self.render_tree(v, context, locate, path + (k,)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.render_tree(v, context, locate, path + (i,)) for i, v in enumerate(data)]
        if self.is_template(data):
            return self.render(data, context, locate(path))
        return data

    def evaluate(self, expression: str, context: Mapping[str, Any], location: Location | None = None) -> Any:
        """Evaluate a bare expression (``when``); ``{{ }}`` around it is accepted."""
        match = _SINGLE_EXPRESSION.match(expression)
        text = expression if match else "{{ " + expression + " }}"
        return self.render(text, context, location)


ENGINE = TemplateEngine()

"""Stage 4: templates. Jinja2 in a sandbox with strict undefined.

A value that is exactly one ``{{ expression }}`` keeps the expression's native type;
mixed text renders to a string. Each leaf is rendered once: values that come out of a
template (an environment variable, a step output, a decoded secret) are data and are
never rendered again. Errors name the file, line, YAML path, template and missing name.

The sandbox bounds the work of one rendering (figures in :mod:`aetherflow.core.limits`):
the characters it writes, the iterations of its loops, the size of each string and list
it builds, the widths given to formatting and filters, and the integers ``*`` and
``**`` compute. Loops and output are counted by rewriting the parsed template (each
``for`` iterates through a counter, each output passes through a meter); operators,
method calls and filters that multiply sizes are checked before they allocate.
"""

from __future__ import annotations

import contextvars
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .errors import Location, TemplateError
from .limits import (
    MAX_TEMPLATE_INTEGER_BITS,
    MAX_TEMPLATE_ITEMS,
    MAX_TEMPLATE_LOOP_ITERATIONS,
    MAX_TEMPLATE_OUTPUT,
    MAX_TEMPLATE_WIDTH,
)

#: The names a template can read, by where it is written (SPEC 4.4): the state location
#: (read before a resumed run's variables are known), resources and other flow metadata,
#: a job's ``when``, step inputs, step outputs (and ``persist``), handler steps.
STATE_ROOTS = frozenset({"env"})
RESOURCE_ROOTS = frozenset({"env", "vars"})
WHEN_ROOTS = frozenset({"env", "vars", "store", "jobs", "run_id", "flow_id"})
STEP_ROOTS = frozenset({"env", "vars", "store", "steps", "job", "jobs", "run_id", "flow_id", "workspace"})
OUTPUT_ROOTS = STEP_ROOTS | {"result"}
HANDLER_ROOTS = STEP_ROOTS | {"run"}
HANDLER_OUTPUT_ROOTS = HANDLER_ROOTS | {"result"}

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


class VarsView(EnvView):
    """The ``vars`` root: the run's variables, recording which ones a template read."""

    name = "vars"

    def __init__(self, values: Mapping[str, Any]):
        super().__init__(named("vars", values))


def named(name: str, data: Any) -> Any:
    """Wrap nested mappings so missing keys report their full dotted path."""
    if isinstance(data, Mapping) and not isinstance(data, (NamedMapping, EnvView)):
        return NamedMapping(name, {k: named(f"{name}.{k}", v) for k, v in data.items()})
    return data


class TemplateLimitError(Exception):
    """A template went beyond one of the bounds of a rendering."""


LIMITS_HINT = "templates are limited in output, loop iterations and sizes (see 'Limits of templates' in docs/flow.md)"


class _Budget:
    """What one rendering has spent so far."""

    __slots__ = ("iterations", "output")

    def __init__(self):
        self.iterations = 0
        self.output = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("aetherflow_template_budget", default=None)


def _sized(value: Any) -> Any:
    """``value``, unless it is a string or list larger than a template may build."""
    if isinstance(value, str):
        if len(value) > MAX_TEMPLATE_OUTPUT:
            raise TemplateLimitError(f"a string of {len(value):,} characters is longer than the limit of {MAX_TEMPLATE_OUTPUT:,}")
    elif isinstance(value, (list, tuple)) and len(value) > MAX_TEMPLATE_ITEMS:
        raise TemplateLimitError(f"a list of {len(value):,} items is longer than the limit of {MAX_TEMPLATE_ITEMS:,}")
    return value


def _expect_at_most(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise TemplateLimitError(f"{what} would be {size:,}, more than the limit of {limit:,}")


def _check_width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _expect_at_most(value, MAX_TEMPLATE_WIDTH, what)


def _check_repetition(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) and not isinstance(times, bool):
            limit = MAX_TEMPLATE_OUTPUT if isinstance(sequence, str) else MAX_TEMPLATE_ITEMS
            _expect_at_most(len(sequence) * max(times, 0), limit, "the repeated value's length")
            return
    if _is_integer(left) and _is_integer(right):
        _expect_at_most(left.bit_length() + right.bit_length(), MAX_TEMPLATE_INTEGER_BITS, "the product's size in bits")


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    if _is_integer(base) and _is_integer(exponent) and exponent > 0 and abs(base) > 1:
        _expect_at_most(exponent * (abs(base).bit_length() - 1), MAX_TEMPLATE_INTEGER_BITS, "the power's size in bits")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?[A-Za-z%]")


def _check_printf(template: str) -> None:
    """Widths and precisions of ``%``-formatting; ``*`` (taken from the values) is refused."""
    for match in _PRINTF_SPEC.finditer(template):
        for part in (match.group("width"), match.group("precision")):
            if part == "*":
                raise TemplateLimitError("'*' widths in %-formatting are not supported in templates")
            if part and (len(part) > 7 or int(part) > MAX_TEMPLATE_WIDTH):
                raise TemplateLimitError(f"a format width of {part} is larger than the limit of {MAX_TEMPLATE_WIDTH:,}")


def _check_format_string(template: str) -> None:
    """Widths in ``str.format`` fields; a width taken from an argument is refused."""
    for _literal, _field, spec, _conversion in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("nested replacement fields in a format spec are not supported in templates")
        for number in re.findall(r"\d+", spec):
            if len(number) > 7 or int(number) > MAX_TEMPLATE_WIDTH:
                raise TemplateLimitError(f"a format width of {number} is larger than the limit of {MAX_TEMPLATE_WIDTH:,}")


def _joined_length(separator: str, items: list) -> int:
    return sum(len(item) if isinstance(item, str) else len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)


def _replaced_length(text: str, old: str, new: str, count: int | None) -> int:
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * (len(new) - len(old))


def _check_str_method(text: str, name: str, args: tuple, kwargs: dict) -> tuple:
    """Check a call of a method of ``text`` that may allocate much more than it is given.
    Returns the arguments to call with (an iterable to join is read once, here)."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0], f"the width given to {name}()")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if _is_integer(tabsize):
            _expect_at_most(len(text) + text.count("\t") * tabsize, MAX_TEMPLATE_OUTPUT, "the expanded text's length")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = args[2] if len(args) > 2 else kwargs.get("count")
        _expect_at_most(_replaced_length(text, args[0], args[1], count), MAX_TEMPLATE_OUTPUT, "the replaced text's length")
    elif name == "join" and args:
        items = list(args[0])
        _expect_at_most(len(items), MAX_TEMPLATE_ITEMS, "the number of items joined")
        _expect_at_most(_joined_length(text, items), MAX_TEMPLATE_OUTPUT, "the joined text's length")
        args = (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        _expect_at_most(len(text) * longest, MAX_TEMPLATE_OUTPUT, "the translated text's length")
    return args


def _counted(iterable: Iterable, budget: _Budget) -> Iterator:
    for item in iterable:
        budget.iterations += 1
        if budget.iterations > MAX_TEMPLATE_LOOP_ITERATIONS:
            raise TemplateLimitError(f"loops ran more than {MAX_TEMPLATE_LOOP_ITERATIONS:,} iterations")
        yield item


def _bounded_filters(filters: dict) -> dict:
    """The built-in filters, each checked before (where it multiplies sizes) and after."""
    import functools

    from jinja2.filters import make_attrgetter

    def before_center(value, width=80, *rest, **kw):
        _check_width(width, "the width given to center")

    def before_indent(value, width=4, *rest, **kw):
        text = str(value)
        step = len(width) if isinstance(width, str) else width
        if _is_integer(step):
            _check_width(step, "the width given to indent")
            _expect_at_most(len(text) + (text.count("\n") + 1) * step, MAX_TEMPLATE_OUTPUT, "the indented text's length")

    def before_format(value, *args, **kw):
        _check_printf(str(value))

    def before_batch(value, linecount, *rest, **kw):
        _check_width(linecount, "the batch size")

    def before_slice(value, slices, *rest, **kw):
        _check_width(slices, "the number of slices")

    def before_replace(value, old, new, count=None):
        _expect_at_most(_replaced_length(str(value), str(old), str(new), count), MAX_TEMPLATE_OUTPUT, "the replaced text's length")

    def before_wordwrap(value, width=79, break_long_words=True, wrapstring=None, *rest, **kw):
        text = str(value)
        breaks = text.count(" ") + text.count("\n") + len(text) // max(width if _is_integer(width) else 1, 1) + 1
        _expect_at_most(len(text) + breaks * len(wrapstring or "\n"), MAX_TEMPLATE_OUTPUT, "the wrapped text's length")

    def before_tojson(value, indent=None):
        _check_width(indent if _is_integer(indent) else len(indent or ""), "the indent given to tojson")
        if _is_integer(indent):
            _expect_at_most(indent, 64, "the indent given to tojson")

    checks = {
        "center": before_center,
        "indent": before_indent,
        "format": before_format,
        "batch": before_batch,
        "slice": before_slice,
        "replace": before_replace,
        "wordwrap": before_wordwrap,
        "tojson": before_tojson,
    }

    def join(eval_ctx, value, d="", attribute=None):
        items = list(value)
        _expect_at_most(len(items), MAX_TEMPLATE_ITEMS, "the number of items joined")
        if attribute is None:
            _expect_at_most(_joined_length(str(d), items), MAX_TEMPLATE_OUTPUT, "the joined text's length")
        return _sized(filters["join"](eval_ctx, items, d, attribute))

    def total(environment, iterable, attribute=None, start=0):
        if not isinstance(start, (str, list, tuple)):
            return filters["sum"](environment, iterable, attribute, start)
        # Adding sequences one by one copies the growing total each time: join them once.
        if attribute is not None:
            iterable = map(make_attrgetter(environment, attribute), iterable)
        parts, size = [start], len(start)
        limit = MAX_TEMPLATE_OUTPUT if isinstance(start, str) else MAX_TEMPLATE_ITEMS
        for part in iterable:
            size += len(part)
            _expect_at_most(size, limit, "the sum's length")
            parts.append(part)
        if isinstance(start, str):
            return "".join(parts)
        joined = [item for part in parts for item in part]
        return joined if isinstance(start, list) else tuple(joined)

    bounded = {}
    for name, original in filters.items():
        if name == "join":
            bounded[name] = functools.update_wrapper(join, original)
            continue
        if name == "sum":
            bounded[name] = functools.update_wrapper(total, original)
            continue
        check = checks.get(name)
        # A filter may take the context, eval context or environment before its value.
        skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

        def guarded(*args, _original=original, _check=check, _skip=skip, **kwargs):
            if _check is not None:
                _check(*args[_skip:], **kwargs)
            return _sized(_original(*args, **kwargs))

        bounded[name] = functools.update_wrapper(guarded, original)
    return bounded


def sql_identifier(value: Any) -> str:
    """Quote a name for SQL text (``"orders"``; a list is a qualified name:
    ``"sales"."orders"``), doubling any ``"`` inside, as PostgreSQL, SQLite and DuckDB
    read it. Values belong in ``params``; this is for names that cannot be parameters."""
    parts = value if isinstance(value, (list, tuple)) else [value]
    if not parts or not all(isinstance(p, str) for p in parts):
        raise TemplateError(f"sql_identifier needs a name or a list of names, got {value!r}")
    for part in parts:
        if not part or "\x00" in part:
            raise TemplateError(f"sql_identifier: {part!r} cannot be an SQL name (empty, or holding a NUL character)")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _make_environment():
    from jinja2 import StrictUndefined, nodes, pass_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.visitor import NodeTransformer

    class NamedUndefined(StrictUndefined):
        __slots__ = ()

        @property
        def _undefined_message(self) -> str:
            owner = self._undefined_obj
            owner_name = getattr(owner, "name", None) if isinstance(owner, (NamedMapping, EnvView)) else None
            if owner_name and isinstance(self._undefined_name, str):
                return f"'{owner_name}.{self._undefined_name}' is undefined"
            return super()._undefined_message

    @pass_context
    def loop_counter(context, iterable):
        budget = _BUDGET.get()
        return iterable if budget is None else _counted(iterable, budget)

    @pass_context
    def output_meter(context, value):
        text = value if isinstance(value, str) else str(_settled(value))
        budget = _BUDGET.get()
        if budget is not None:
            budget.output += len(text)
            if budget.output > MAX_TEMPLATE_OUTPUT:
                raise TemplateLimitError(f"the template wrote more than {MAX_TEMPLATE_OUTPUT:,} characters")
        return text

    @pass_context
    def size_check(context, value):
        return _sized(value)

    # Names no template can spell by accident; the filters are only inserted by the rewrite.
    loop_filter, output_filter, size_filter = "aetherflow-loop", "aetherflow-output", "aetherflow-size"

    def filter_node(node, name):
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    class Meter(NodeTransformer):
        """Every loop iterates through a counter; every output and ``~`` is measured."""

        def visit_For(self, node):
            node = self.generic_visit(node)
            node.iter = filter_node(node.iter, loop_filter)
            return node

        def visit_Output(self, node):
            node = self.generic_visit(node)
            node.nodes = [filter_node(child, output_filter) for child in node.nodes]
            return node

        def visit_Concat(self, node):
            return filter_node(self.generic_visit(node), size_filter)

    class FlowSandbox(ImmutableSandboxedEnvironment):
        """Item lookup wins over attributes for our mappings, so an output named
        ``items`` or ``keys`` is the output, not the dict method. Operators, calls and
        filters that can multiply sizes are checked before they run."""

        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def getattr(self, obj, attribute):
            if isinstance(obj, (NamedMapping, EnvView)) and isinstance(attribute, str) and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

        def _generate(self, source, name, filename, defer_init=False):
            source = Meter().visit(source)
            source.set_environment(self)
            return super()._generate(source, name, filename, defer_init=defer_init)

        def call_binop(self, context, operator, left, right):
            if operator == "*":
                _check_repetition(left, right)
            elif operator == "**":
                _check_power(left, right)
            elif operator == "%" and isinstance(left, str):
                _check_printf(left)
            return _sized(self.binop_table[operator](left, right))

        # Mangled parameter names, as in the sandbox: a template's keyword arguments
        # (``f(obj=1)``) cannot collide with them.
        def call(__self, __context, __obj, *args, **kwargs):
            owner = getattr(__obj, "__self__", None)
            method = getattr(__obj, "__name__", "")
            wrapped = getattr(__obj, "__wrapped__", None)
            if method in ("format", "format_map") and isinstance(getattr(wrapped, "__self__", None), str):
                _check_format_string(wrapped.__self__)
            elif isinstance(owner, str):
                args = _check_str_method(owner, method, args, kwargs)
            elif _is_integer(owner) and method == "to_bytes":
                _check_width(args[0] if args else kwargs.get("length", 1), "the length given to to_bytes")
            return _sized(super().call(__context, __obj, *args, **kwargs))

    environment = FlowSandbox(undefined=NamedUndefined, autoescape=False, keep_trailing_newline=True)
    environment.filters = _bounded_filters(environment.filters)
    environment.filters.update({loop_filter: loop_counter, output_filter: output_meter, size_filter: size_check})
    environment.filters["sql_identifier"] = sql_identifier
    # lipsum() writes any number of paragraphs and has no use in a flow.
    environment.globals.pop("lipsum", None)
    return environment


def _settled(value: Any) -> Any:
    """``value`` as data a step can use: no undefined name hides inside it, and no lazy
    sequence either. A list or mapping built by an expression (``{'code':
    result.exit_cod}``) keeps an undefined item as a placeholder that would only fail
    when written out; ``map``, ``select`` and the like return generators, which would be
    written out as their ``repr``. Generators become lists (each item counted as a loop
    iteration), and every item is checked."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Iterator):
        budget = _BUDGET.get()
        value = _sized(list(value if budget is None else _counted(value, budget)))
    if type(value) is list:
        return [_settled(item) for item in value]
    if type(value) is tuple:
        return tuple(_settled(item) for item in value)
    if type(value) is dict:
        # Built by the expression; the runner's own mappings (``result``, ``env``) hold data already.
        return {_settled(k): _settled(v) for k, v in value.items()}
    return value


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

    def unquoted_outputs(self, text: str) -> bool:
        """True when a template writes a value into its text that does not pass last
        through ``sql_identifier`` (for the SQL injection warning)."""
        from jinja2 import nodes

        try:
            tree = self.environment.parse(text)
        except Exception:  # noqa: BLE001 - a syntax error is reported by check_syntax
            return False
        for output in tree.find_all(nodes.Output):
            for child in output.nodes:
                if isinstance(child, nodes.TemplateData):
                    continue
                if not (isinstance(child, nodes.Filter) and child.name == "sql_identifier"):
                    return True
        return False

    def check_syntax(self, text: str) -> str | None:
        """A syntax error message, or None."""
        from jinja2 import TemplateSyntaxError

        # Parsing finds every syntax error at a fifth of the cost of compiling.
        try:
            self.environment.parse(text)
        except TemplateSyntaxError as exc:
            return exc.message or str(exc)
        return None

    def names_read(self, text: str, root: str) -> list[str]:
        """The names a template reads under ``root`` (``vars.day``, ``vars['day']``), in
        order; an unparsable template reads none (its syntax error is reported apart)."""
        from jinja2 import TemplateSyntaxError, nodes

        try:
            tree = self.environment.parse(text)
        except TemplateSyntaxError:
            return []
        found: dict[str, None] = {}
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            if isinstance(node.node, nodes.Name) and node.node.name == root:
                if isinstance(node, nodes.Getattr):
                    found[node.attr] = None
                elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                    found[node.arg.value] = None
        return list(found)

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
        from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

        budget = _BUDGET.set(_Budget())
        try:
            mode, compiled = self._compile(text)
            if mode == "expr":
                return _sized(_settled(compiled(**context)))
            return compiled.render(**context)
        except TemplateLimitError as exc:
            raise TemplateError(f"template {text!r}: {exc}", hint=LIMITS_HINT, location=location) from None
        except TemplateError as exc:
            raise TemplateError(f"template {text!r}: {exc.message}", hint=exc.hint, location=location) from None
        except RecursionError:
            raise TemplateError(
                f"template {text!r}: recursion too deep",
                hint=f"a macro or a recursive loop calls itself without end; {LIMITS_HINT}",
                location=location,
            ) from None
        except MemoryError:
            raise TemplateError(f"template {text!r}: out of memory", hint=LIMITS_HINT, location=location) from None
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
        finally:
            _BUDGET.reset(budget)

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

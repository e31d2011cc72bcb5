"""Semantic checks of a flow that the models cannot express.

Unique ids, existing ``depends_on`` targets, an acyclic job graph, known step types,
declared step inputs (required present, no unknown names, literal values of the right
type), existing resources, known connector kinds/drivers, and template syntax; with
``max_parallel`` above 1, that templates read only upstream jobs (:func:`parallel_reads`).

Warnings do not stop a flow: :func:`find_warnings` reports templates rendered into SQL
text, where values belong in ``params`` (a value pasted into SQL is an injection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import upstream
from ..decode import DecodeSpecError, parse_decode
from ..errors import AetherflowError, Problem, closest
from ..limits import MAX_DELAY_SECONDS
from ..steps.registry import get_step, step_types
from ..templating import (
    ENGINE,
    HANDLER_OUTPUT_ROOTS,
    HANDLER_ROOTS,
    OUTPUT_ROOTS,
    RESOURCE_ROOTS,
    STATE_ROOTS,
    STEP_ROOTS,
    WHEN_ROOTS,
)
from ..variables import VAR_NAME_PATTERN

_STEP_REF = re.compile(r"\bsteps\.([A-Za-z0-9_-]+)")
_JOB_REF = re.compile(r"\bjobs\.([A-Za-z0-9_-]+)")
_NAME = re.compile(VAR_NAME_PATTERN)
_JOB_OUTPUT_REF = re.compile(r"""\bjobs\.([A-Za-z0-9_-]+)\.outputs(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*['"]([^'"]+)['"]\s*\])""")


@dataclass(frozen=True)
class _JobScope:
    """What the templates of one job may read of the other jobs, and what each job
    declares as outputs. A job that is neither upstream of this one nor planned before
    it has not run when this one starts: reading it fails whatever it did."""

    job: str
    ids: dict[str, int]
    upstream: frozenset[str]
    planned_before: frozenset[str]
    outputs: dict[str, list[str]]

    def check(self, add, path: tuple, text: str, what: str) -> None:
        for ref in dict.fromkeys(_JOB_REF.findall(text)):
            if ref not in self.ids:
                add(path, f"{what} refers to unknown job {ref!r}", _did_you_mean(ref, self.ids))
            elif ref not in self.upstream and ref not in self.planned_before:
                add(
                    path,
                    f"{what} reads job {ref!r}, which job {self.job!r} does not depend on and which runs after it",
                    f"add {ref!r} to depends_on of job {self.job!r}",
                )
        for ref, dotted, quoted in _JOB_OUTPUT_REF.findall(text):
            name = dotted or quoted
            declared = self.outputs.get(ref)
            if declared is None or name in declared:
                continue
            hint = (
                f"job {ref!r} declares: {', '.join(declared)}"
                if declared
                else f"job {ref!r} declares no outputs; a step's `outputs:` promotes values to its job's outputs"
            )
            match = closest(name, declared)
            add(path, f"{what} reads jobs.{ref}.outputs.{name}, which job {ref!r} does not declare" + (f" (did you mean {match!r}?)" if match else ""), hint)


def _planned_before(jobs) -> dict[str, frozenset[str]]:
    """The jobs a run starts before each job (the run's plan order); a job in a
    dependency cycle is in no plan (the cycle is reported) and reads nothing."""
    from ..runner.plan import plan_jobs

    order = [job.id for job in plan_jobs(list(jobs))]
    return {job_id: frozenset(order[:i]) for i, job_id in enumerate(order)}


def _upstream(jobs) -> dict[str, frozenset[str]]:
    """Every job's direct and indirect dependencies (cycles are reported elsewhere)."""
    direct = {job.id: set(job.depends_on) for job in jobs}
    found: dict[str, frozenset[str]] = {}
    for job_id in direct:
        seen: set[str] = set()
        todo = list(direct[job_id])
        while todo:
            dep = todo.pop()
            if dep not in seen and dep != job_id:
                seen.add(dep)
                todo.extend(direct.get(dep, ()))
        found[job_id] = frozenset(seen)
    return found


def _did_you_mean(name: str, candidates) -> str | None:
    match = closest(name, candidates)
    return f"did you mean {match!r}?" if match else None


def check_document(document) -> list[Problem]:
    spec, index = document.spec, document.index
    problems: list[Problem] = []

    def add(path: tuple, message: str, hint: str | None = None, key: bool = False):
        problems.append(Problem(index.locate(path, key=key), message, hint))

    job_ids: dict[str, int] = {}
    for i, job in enumerate(spec.jobs):
        if job.id in job_ids:
            add(("jobs", i, "id"), f"duplicate job id {job.id!r}", f"job ids must be unique; first used at jobs[{job_ids[job.id]}]")
        else:
            job_ids[job.id] = i

    upstream_of = _upstream(spec.jobs)
    before = _planned_before(spec.jobs)
    declared_outputs = {job.id: list(dict.fromkeys(key for step in job.steps for key in step.outputs)) for job in spec.jobs}
    for i, job in enumerate(spec.jobs):
        scope = _JobScope(job.id, job_ids, upstream_of.get(job.id, frozenset()), before.get(job.id, frozenset(job_ids)), declared_outputs)
        for j, dep in enumerate(job.depends_on):
            if dep == job.id:
                add(("jobs", i, "depends_on", j), f"job {job.id!r} depends on itself")
            elif dep not in job_ids:
                add(("jobs", i, "depends_on", j), f"unknown job {dep!r} in depends_on", _did_you_mean(dep, job_ids))
        if job.when is not None and _check_template(add, ("jobs", i, "when"), job.when, WHEN_ROOTS, expression=True):
            scope.check(add, ("jobs", i, "when"), job.when, "`when`")
        step_ids: dict[str, int] = {}
        for k, step in enumerate(job.steps):
            base = ("jobs", i, "steps", k)
            if step.id in step_ids:
                add(base + ("id",), f"duplicate step id {step.id!r} in job {job.id!r}", f"first used at steps[{step_ids[step.id]}]")
            earlier = dict(step_ids)
            step_ids.setdefault(step.id, k)
            _check_retry(add, base, step)
            _check_step(add, base, step.type, step.inputs, spec, earlier, scope)
            _walk_templates(add, base + ("outputs",), step.outputs, OUTPUT_ROOTS, earlier_steps=earlier, scope=scope)

    cycle = _find_cycle(spec.jobs)
    if cycle:
        first = job_ids[cycle[0]]
        add(("jobs", first, "depends_on"), f"dependency cycle: {' -> '.join(cycle)}", "remove one of these depends_on entries")

    from ..connectors import registry
    from ..errors import RegistryError

    registered = {entry.key for entry in registry.entries()}
    kinds = {kind for kind, _ in registered}
    for name, resource in spec.resources.items():
        try:
            registry.get_entry(resource.kind, resource.driver)
        except RegistryError as exc:
            hint = upstream.driver_hint(resource.kind, resource.driver, registered) or exc.hint
            add(("resources", name, "kind" if resource.kind not in kinds else "driver"), exc.message, hint)
        for section in ("config", "options"):
            _walk_templates(add, ("resources", name, section), getattr(resource, section), RESOURCE_ROOTS)
        try:
            parse_decode(resource.decode)
        except DecodeSpecError as exc:
            add(("resources", name, "decode") + exc.path, exc.message, exc.hint, key=exc.at_key)
    _check_template(add, ("flow", "workspace", "root"), spec.flow.workspace.root, RESOURCE_ROOTS)
    for key in ("path", "dsn"):
        _check_template(add, ("flow", "state", key), getattr(spec.flow.state, key), STATE_ROOTS)
    if spec.flow.lock is not None:
        _check_template(add, ("flow", "lock", "key"), spec.flow.lock.key, RESOURCE_ROOTS)
    if spec.flow.max_parallel > 1 and not cycle:
        for path, message, hint in parallel_reads(spec, spec.flow.max_parallel, "flow.max_parallel"):
            add(path, message, hint)
    state = spec.flow.state
    if state.backend == "postgres" and not state.dsn:
        add(("flow", "state", "backend"), "state backend postgres needs a dsn", "add `dsn: \"postgresql://user@host/db\"` under flow.state")
    if state.backend == "sqlite" and state.dsn:
        add(("flow", "state", "dsn"), "a dsn is only used by the postgres state backend", "use `path:` for sqlite, or `backend: postgres`")
    _check_variables(add, document)
    _check_handlers(add, spec, _JobScope("handlers", job_ids, frozenset(job_ids), frozenset(job_ids), declared_outputs))
    _check_persist(add, spec)
    return problems


SQL_TEMPLATE_OPT_OUT = "allow_sql_template"


def find_warnings(document) -> list[Problem]:
    """Problems worth a warning that do not make the flow invalid."""
    warnings: list[Problem] = []
    for i, job in enumerate(document.spec.jobs):
        for k, step in enumerate(job.steps):
            if step.type not in step_types():
                continue
            declared = get_step(step.type).inputs or {}  # None: inputs not declared
            sql = step.inputs.get("sql")
            if "params" not in declared or not ENGINE.is_template(sql) or step.inputs.get(SQL_TEMPLATE_OPT_OUT) is True:
                continue
            if ENGINE.unquoted_outputs(sql):
                hint = "pass values in `params` with the driver's placeholders instead; quote a table or column name with `| sql_identifier`"
                if SQL_TEMPLATE_OPT_OUT in declared:
                    hint += f"; set `{SQL_TEMPLATE_OPT_OUT}: true` on the step when the template is intended"
                warnings.append(
                    Problem(document.locate("jobs", i, "steps", k, "inputs", "sql"), "a template renders values into the SQL text (SQL injection risk)", hint)
                )
    return warnings


def _check_variables(add, document) -> None:
    """Declared variables are well formed, and every ``vars.<name>`` a template reads is declared."""
    from ..connectors.schema import CoercionError, Field, coerce
    from ..variables import var_types

    declared = document.spec.vars
    for name, var in declared.items():
        if not _NAME.match(name):
            add(("vars", name), f"invalid variable name {name!r}", "names start with a letter or '_' and use letters, digits and '_'", key=True)
        if var.required and var.default is not None:
            add(("vars", name, "default"), f"variable {name!r} is required and has a default", "drop `required: true` or the default")
        elif var.default is not None:
            try:
                coerce(var.default, Field(type=var_types()[var.type]))
            except CoercionError as exc:
                add(("vars", name, "default"), f"default of variable {name!r} ({var.type}): {exc}")

    def walk(value: Any, path: tuple) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (i,))
        elif isinstance(value, str) and "vars" in value and (ENGINE.is_template(value) or path[-1:] == ("when",)):
            text = value if ENGINE.is_template(value) else "{{ " + value + " }}"
            if path[:2] == ("flow", "state") and ENGINE.names_read(text, "vars"):
                add(path, "the state location cannot read run variables", "use env here: the state is opened before a resumed run's variables are known")
                return
            for ref in ENGINE.names_read(text, "vars"):
                if ref not in declared:
                    hint = _did_you_mean(ref, declared) or (
                        f"declared variables: {', '.join(declared)}" if declared else "declare it under `vars:` at the top of the flow file"
                    )
                    add(path, f"template reads undeclared variable {ref!r}", hint)

    for key, value in document.raw.items():
        if key != "vars":
            walk(value, (key,))


def _check_handlers(add, spec, scope: _JobScope) -> None:
    """Handler steps run after every job: they may read any job's outputs."""
    for event in ("on_failure", "on_success", "always"):
        step_ids: dict[str, int] = {}
        for k, step in enumerate(getattr(spec.handlers, event)):
            base = ("handlers", event, k)
            if step.id in step_ids:
                add(base + ("id",), f"duplicate step id {step.id!r} in handlers.{event}", f"first used at {event}[{step_ids[step.id]}]")
            if step.persist:
                add(base + ("persist",), "a handler step cannot persist values", "handlers run after the run's values are written; persist from a job's step")
            earlier = dict(step_ids)
            step_ids.setdefault(step.id, k)
            _check_retry(add, base, step)
            _check_step(add, base, step.type, step.inputs, spec, earlier, scope, roots=HANDLER_ROOTS)
            _walk_templates(add, base + ("outputs",), step.outputs, HANDLER_OUTPUT_ROOTS, earlier_steps=earlier, scope=scope)


def _check_persist(add, spec) -> None:
    """Persisted names are template-readable and each is written by one step only."""
    first: dict[str, str] = {}
    for i, job in enumerate(spec.jobs):
        for k, step in enumerate(job.steps):
            for name, value in step.persist.items():
                path = ("jobs", i, "steps", k, "persist", name)
                if not _NAME.match(name):
                    add(path, f"invalid persisted name {name!r}", "names start with a letter or '_' and use letters, digits and '_'", key=True)
                elif name in first:
                    add(path, f"{name!r} is persisted by two steps", f"already persisted by {first[name]}; each name has one writer", key=True)
                else:
                    first[name] = f"{job.id}.{step.id}"
                _walk_templates(add, path, value, OUTPUT_ROOTS)


def _check_retry(add, base: tuple, step) -> None:
    if step.retry is not None and step.retry.longest_wait() > MAX_DELAY_SECONDS:
        retry = step.retry
        add(
            base + ("retry",),
            f"retry would wait {retry.longest_wait():,.0f} seconds before attempt {retry.max_attempts}",
            f"delay_seconds x backoff^(max_attempts - 2) may be at most {MAX_DELAY_SECONDS} seconds (a day); "
            "lower max_attempts, delay_seconds or backoff",
            key=True,
        )


def resource_key_problems(document) -> list[Problem]:
    """``config`` and ``options`` keys of the flow's resources that their connector does
    not declare. Reads the connectors' schemas, which imports no driver; a connector that
    cannot be loaded is left to ``resolve``, which says what to install."""
    from ..connectors import registry
    from ..connectors.schema import unknown_key

    problems = []
    for name, resource in document.spec.resources.items():
        try:
            config, options = registry.declared_schemas(registry.get_entry(resource.kind, resource.driver))
        except Exception:  # noqa: BLE001 - unknown or unloadable connectors are reported elsewhere
            continue
        schemas = {"config": config, "options": options}
        for section, schema in schemas.items():
            if schema is None:
                continue
            for key in getattr(resource, section):
                if key not in schema:
                    message, hint = unknown_key(name, resource.kind, resource.driver, section, key, schemas)
                    problems.append(Problem(document.locate("resources", name, section, key, key=True), message, hint))
    return problems


def _check_step(
    add, base: tuple, type_name: str, inputs: dict, spec, earlier_steps: dict, scope: _JobScope, *, templates: bool = True, roots=STEP_ROOTS
) -> None:
    """A step's type and inputs (``base`` is the step's path). ``templates=False`` for an
    inner step, whose templates were walked as part of the outer step's input."""
    if type_name not in step_types():
        known = step_types()
        hint = upstream.step_type_hint(type_name, known) or _did_you_mean(type_name, known) or f"known step types: {', '.join(known)}"
        add(base + ("type",), f"unknown step type {type_name!r}", hint)
        return
    try:
        cls = get_step(type_name)
    except AetherflowError as exc:
        add(base + ("type",), exc.message, exc.hint)
        return
    declared = cls.inputs
    for name, value in inputs.items():
        path = base + ("inputs", name)
        if declared is None:
            # Not declared: the step takes any input; only templates can be checked.
            if templates and _has_template(value):
                _walk_templates(add, path, value, roots, earlier_steps=earlier_steps, scope=scope)
            continue
        if name not in declared:
            add(
                path,
                f"unknown input {name!r} for step type {type_name!r}",
                upstream.input_hint(type_name, name)
                or _did_you_mean(name, declared)
                or (f"inputs of {type_name}: {', '.join(declared)}" if declared else f"step type {type_name} takes no inputs"),
                key=True,
            )
            continue
        if _has_template(value):
            if templates:
                _walk_templates(add, path, value, roots, earlier_steps=earlier_steps, scope=scope)
            if not isinstance(value, list):
                continue
        else:
            message = declared[name].check(value)
            if message:
                add(path, f"input {name!r}: {message}")
                continue
            if declared[name].resource and isinstance(value, str) and value not in spec.resources:
                known = f"resources of this flow: {', '.join(spec.resources) or 'none'}"
                add(path, f"unknown resource {value!r}", _did_you_mean(value, spec.resources) or known)
        bad_item = declared[name].check_items(value)
        if bad_item is not None:
            item, message = bad_item
            hint = (
                f"YAML reads an unquoted {str(value[item]).lower()} as a boolean; quote it if a word was meant: \"{str(value[item]).lower()}\""
                if isinstance(value[item], bool)
                else None
            )
            add(path + (item,), f"input {name!r}, item {item}: {message}", hint)
    for name in cls.required_names():
        if name not in inputs:
            add(
                base + ("inputs",) if inputs else base,
                f"missing required input {name!r} for step type {type_name!r}",
                f"add `{name}:` under inputs",
                key=bool(inputs),
            )
    inner = inputs.get(cls.inner_step) if cls.inner_step else None
    if isinstance(inner, dict):
        _check_inner_step(add, base + ("inputs", cls.inner_step), cls, inner, spec, earlier_steps, scope, roots)


_INNER_STEP_KEYS = ("type", "id", "inputs")


def _check_inner_step(add, base: tuple, outer, inner: dict, spec, earlier_steps: dict, scope: _JobScope, roots=STEP_ROOTS) -> None:
    """The step a step such as ``with_lock`` runs, checked like one of the job's steps."""
    for key in inner:
        if key not in _INNER_STEP_KEYS:
            add(base + (key,), f"unknown key {key!r} in the inner step of {outer.type}", f"an inner step has {', '.join(_INNER_STEP_KEYS)}", key=True)
    type_name = inner.get("type")
    if not isinstance(type_name, str) or not type_name or _has_template(type_name):
        if not isinstance(type_name, str) or not type_name:
            add(base, f"the inner step of {outer.type} needs a `type`", "for example: step: {type: db_execute, inputs: {...}}")
        return
    if type_name == outer.type:
        add(base + ("type",), f"the inner step of {outer.type} cannot be another {outer.type}")
        return
    inputs = inner.get("inputs") or {}
    if not isinstance(inputs, dict):
        add(base + ("inputs",), f"the inputs of the inner step of {outer.type} must be a mapping")
        return
    _check_step(add, base, type_name, inputs, spec, earlier_steps, scope, templates=False, roots=roots)


def _template_texts(value: Any, path: tuple) -> list[tuple[tuple, str]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _template_texts(v, path + (k,))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _template_texts(v, path + (i,))]
    return [(path, value)] if isinstance(value, str) and "jobs." in value else []


def parallel_reads(spec, max_parallel: int, source: str) -> list[tuple[tuple, str, str]]:
    """Templates reading a job that is not upstream of the reader: ``(path, message, hint)``.

    One after another, such a job has finished or not depending on the file's order; in
    parallel, on timing. So with ``max_parallel`` above 1 every job a ``when``, an input
    or an output reads must be among the reader's upstream jobs. (A read of a job planned
    after the reader is an error whatever ``max_parallel`` says, reported by the checks
    of the job's templates.)
    """
    upstream = _upstream(spec.jobs)
    planned_before = _planned_before(spec.jobs)
    job_ids = set(upstream)
    problems = []
    for i, job in enumerate(spec.jobs):
        texts = [(("jobs", i, "when"), job.when)] if job.when else []
        for k, step in enumerate(job.steps):
            base = ("jobs", i, "steps", k)
            texts += _template_texts(step.inputs, base + ("inputs",)) + _template_texts(step.outputs, base + ("outputs",))
        for path, text in texts:
            for ref in dict.fromkeys(_JOB_REF.findall(text)):
                if ref in job_ids and ref not in upstream[job.id] and ref in planned_before.get(job.id, ()):
                    problems.append((
                        path,
                        f"job {job.id!r} reads job {ref!r}, which is not among its upstream jobs, and {source} is {max_parallel}",
                        f"add {ref!r} to depends_on of job {job.id!r} (or to the jobs it depends on), so it has finished first",
                    ))
    return problems


def _has_template(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return ENGINE.is_template(value)


def _walk_templates(add, path: tuple, value: Any, roots, *, earlier_steps: dict | None = None, scope: _JobScope | None = None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk_templates(add, path + (k,), v, roots, earlier_steps=earlier_steps, scope=scope)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk_templates(add, path + (i,), v, roots, earlier_steps=earlier_steps, scope=scope)
    elif ENGINE.is_template(value):
        if not _check_template(add, path, value, roots):
            return
        if earlier_steps is not None:
            for ref in _STEP_REF.findall(value):
                if ref not in earlier_steps:
                    add(path, f"template refers to step {ref!r}, which does not run earlier in this job", _did_you_mean(ref, earlier_steps))
        if scope is not None:
            scope.check(add, path, value, "template")


def _check_template(add, path: tuple, text: str, roots, *, expression: bool = False) -> bool:
    if not isinstance(text, str):
        return True
    if expression and not ENGINE.is_template(text):
        text = "{{ " + text + " }}"
    fixes = upstream.template_fixes(text, roots)
    for fix in fixes:
        add(path, f"{fix.why}: {fix.old}", f"write {fix.new}")
    if fixes:
        return False
    error = ENGINE.check_syntax(text)
    if error:
        hint = (
            "check the expression: a `when` is a bare expression, such as jobs.a.outputs.count > 0"
            if expression
            else "check the {{ }} braces and the expression"
        )
        add(path, f"{'expression' if expression else 'template'} syntax error: {error}", hint)
        return False
    return True


def _find_cycle(jobs) -> list[str] | None:
    graph = {job.id: [d for d in job.depends_on if d != job.id] for job in jobs}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for job in jobs:
        if job.id not in state:
            found = visit(job.id)
            if found:
                return found
    return None

"""``aetherflow graph``: the job graph of a flow as Mermaid, Graphviz DOT or text.

A job is a node; an arrow goes from each job to the jobs that depend on it; a job with
a ``when`` gate is drawn as a hexagon carrying its expression; the resources a job's
steps name (inputs declared as resources, inner steps included) hang off it by dotted
lines. Only the flow file is read: nothing is resolved or connected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORMATS = ("mermaid", "dot", "text")


@dataclass(frozen=True)
class JobNode:
    id: str
    depends_on: tuple[str, ...]
    when: str | None
    steps: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class FlowGraph:
    flow_id: str
    jobs: tuple[JobNode, ...]  # in the order a run starts them
    resources: dict[str, str]  # name -> kind/driver, of the resources some job uses


def _step_resources(type_name: Any, inputs: Any) -> list[str]:
    """The resource names a step's literal inputs give (its inner step's too)."""
    from aetherflow.core.errors import AetherflowError
    from aetherflow.core.steps.registry import get_step, step_types

    if not isinstance(type_name, str) or type_name not in step_types() or not isinstance(inputs, dict):
        return []
    try:
        cls = get_step(type_name)
    except AetherflowError:
        return []
    names = []
    for name, spec in (cls.inputs or {}).items():
        value = inputs.get(name)
        if spec.resource and isinstance(value, str):
            names.append(value)
    inner = inputs.get(cls.inner_step) if cls.inner_step else None
    if isinstance(inner, dict):
        names += _step_resources(inner.get("type"), inner.get("inputs") or {})
    return names


def flow_graph(document) -> FlowGraph:
    from aetherflow.core.runner.plan import plan_jobs

    spec = document.spec
    jobs = []
    used: dict[str, str] = {}
    for job in plan_jobs(list(spec.jobs)):
        names = []
        for step in job.steps:
            names += [n for n in _step_resources(step.type, step.inputs) if n in spec.resources]
        names = list(dict.fromkeys(names))
        for name in names:
            used[name] = f"{spec.resources[name].kind}/{spec.resources[name].driver}"
        jobs.append(JobNode(job.id, tuple(job.depends_on), job.when, tuple(step.id for step in job.steps), tuple(names)))
    return FlowGraph(spec.flow.id, tuple(jobs), dict(sorted(used.items())))


def _steps_label(job: JobNode) -> str:
    return f"{len(job.steps)} step" if len(job.steps) == 1 else f"{len(job.steps)} steps"


# -- Mermaid --------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: quotes and angle brackets as entity codes."""
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph: FlowGraph) -> str:
    job_ids = {job.id: f"j{i}" for i, job in enumerate(graph.jobs)}
    resource_ids = {name: f"r{i}" for i, name in enumerate(graph.resources)}
    lines = ["flowchart TD"]
    for job in graph.jobs:
        label = f"{_mermaid_text(job.id)}<br/>{_steps_label(job)}"
        if job.when:
            lines.append(f'    {job_ids[job.id]}{{{{"{label}<br/>when: {_mermaid_text(job.when)}"}}}}')
        else:
            lines.append(f'    {job_ids[job.id]}["{label}"]')
    for name, kind_driver in graph.resources.items():
        lines.append(f'    {resource_ids[name]}[("{_mermaid_text(name)}<br/>{_mermaid_text(kind_driver)}")]')
    for job in graph.jobs:
        for dep in job.depends_on:
            lines.append(f"    {job_ids[dep]} --> {job_ids[job.id]}")
    for job in graph.jobs:
        for name in job.resources:
            lines.append(f"    {job_ids[job.id]} -.- {resource_ids[name]}")
    return "\n".join(lines)


# -- Graphviz DOT ---------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: FlowGraph) -> str:
    lines = [f"digraph {_dot_text(graph.flow_id)} {{", "    rankdir=TB;", '    node [shape=box, fontname="sans-serif"];']
    for job in graph.jobs:
        label = f"{job.id}\n{_steps_label(job)}"
        if job.when:
            lines.append(f"    {_dot_text('job:' + job.id)} [label={_dot_text(label + chr(10) + 'when: ' + job.when)}, shape=hexagon];")
        else:
            lines.append(f"    {_dot_text('job:' + job.id)} [label={_dot_text(label)}];")
    for name, kind_driver in graph.resources.items():
        lines.append(f"    {_dot_text('resource:' + name)} [label={_dot_text(name + chr(10) + kind_driver)}, shape=cylinder];")
    for job in graph.jobs:
        for dep in job.depends_on:
            lines.append(f"    {_dot_text('job:' + dep)} -> {_dot_text('job:' + job.id)};")
    for job in graph.jobs:
        for name in job.resources:
            lines.append(f"    {_dot_text('job:' + job.id)} -> {_dot_text('resource:' + name)} [style=dotted, arrowhead=none];")
    lines.append("}")
    return "\n".join(lines)


# -- text -----------------------------------------------------------------------------------


def to_text(graph: FlowGraph) -> str:
    """One line per job in the order a run starts them, then what it waits for, its gate
    and the resources it uses."""
    width = max(len(job.id) for job in graph.jobs)
    lines = [f"flow {graph.flow_id}"]
    for job in graph.jobs:
        parts = [f"{job.id.ljust(width)}  {_steps_label(job)}"]
        if job.depends_on:
            parts.append(f"after {', '.join(job.depends_on)}")
        if job.when:
            parts.append(f"when {job.when}")
        if job.resources:
            parts.append("uses " + ", ".join(f"{name} ({graph.resources[name]})" for name in job.resources))
        lines.append("  " + "; ".join(parts))
    return "\n".join(lines)


RENDERERS = {"mermaid": to_mermaid, "dot": to_dot, "text": to_text}

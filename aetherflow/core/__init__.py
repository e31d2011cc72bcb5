"""aetherflow's engine: spec, resolver, connectors, steps, runner and state."""

__version__ = "0.1.0"

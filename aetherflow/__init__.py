"""Alias package: ``aetherflow.core`` is ``aetherflow_core`` under its documented name."""

"""aetherflow: a command-line flow runner.

``aetherflow.core`` is the engine (flows, resolver, connectors, runner, state; it never
imports the command line), ``aetherflow.cli`` the command line built on it. Plugin
authors import from :mod:`aetherflow.core.api` only. Importing this package imports
neither.
"""

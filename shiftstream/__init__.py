"""shiftstream: real-time personalization as stream jobs (PyFlink, Apache Beam, a pure-Python reference runner).

The installed distribution claims this one top-level name; the project's folders (`schemas`, `transforms`,
`models`, `jobs`, `runners`) are its subpackages. In a source checkout they sit beside this folder, and the path
below makes `shiftstream.transforms` find them there; in an installed wheel they sit inside it.

Embedding the core in your own code needs only the names in `__all__` (loaded on first use):

    from shiftstream import load_config, run_events
    decisions = run_events(events, load_config())   # {user key: decision record}
"""
from __future__ import annotations

import os as _os

__version__ = "0.2.0"

_here = _os.path.dirname(_os.path.abspath(__file__))
if not _os.path.isdir(_os.path.join(_here, "transforms")):  # a source checkout: the subpackages are beside us
    __path__.append(_os.path.dirname(_here))  # type: ignore[name-defined]  # noqa: F821

__all__ = ["Config", "ConfigError", "load_config", "Core", "UserState", "Pseudonymiser", "ReferenceJob",
           "MemorySink", "run_events", "__version__"]

_EXPORTS = {
    "Config": "shiftstream.transforms.config", "ConfigError": "shiftstream.transforms.config",
    "load_config": "shiftstream.transforms.config", "Core": "shiftstream.transforms.core",
    "UserState": "shiftstream.transforms.state", "Pseudonymiser": "shiftstream.transforms.pseudonyms",
    "ReferenceJob": "shiftstream.jobs.reference", "MemorySink": "shiftstream.jobs.testing",
    "run_events": "shiftstream.jobs.testing",
}


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'shiftstream' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value

"""Finds passes, backends and frontends without the compiler importing them by name.

Each plugin package registers its members on import. The compiler only knows the package names
(its registry of providers); the import happens on first use, so `import compiler` stays light.
"""
from __future__ import annotations

import importlib

PLUGIN_PACKAGES = ("frontends", "passes", "backends")
_loaded = False


def load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in PLUGIN_PACKAGES:
        importlib.import_module(package)

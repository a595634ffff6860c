"""Started by Python at start-up when this folder is on PYTHONPATH (`testfleet probe` puts it
there, and subprocesses inherit it): starts the probe the TESTFLEET_PROBE_* variables describe,
then runs any other `sitecustomize` on the path."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _start_probe() -> None:
    try:
        from testfleet.probe import start_from_env
    except ImportError as error:
        sys.stderr.write(f"testfleet probe: cannot import testfleet ({error}); not measuring\n")
        return
    try:
        start_from_env()
    except Exception as error:  # the application must start anyway
        sys.stderr.write(f"testfleet probe: not measuring: {error}\n")


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.modules.pop("sitecustomize", None)
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)
    elif saved is not None:
        sys.modules["sitecustomize"] = saved


_start_probe()
_chain()

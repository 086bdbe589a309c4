"""Shared test set-up: tests marked ``gpu`` run only where a CUDA GPU is usable; the
reference data fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOT = Path(__file__).resolve().parents[1]


def run_under_cuda_simulator(code: str, *args: str, timeout: int = 600):
    """Run ``python -c code *args`` from the checkout under Numba's CUDA simulator (it must be
    switched on before Numba is imported, hence a subprocess); returns the completed process."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def fake_1000():
    """``../shared/data/fake_1000.csv`` as a pandas DataFrame (skips where it is absent)."""
    pd = pytest.importorskip("pandas")
    path = DATA / "fake_1000.csv"
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (shared/data is not checked out)")
    return pd.read_csv(path)


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    from gpulink.backend import gpu_status

    ok, why = gpu_status()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {why}")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture
def without_altair(monkeypatch):
    """Imports of altair fail, as where the ``charts`` extra is not installed."""
    import builtins

    real_import = builtins.__import__

    def no_altair(name, *args, **kwargs):
        if name == "altair" or name.startswith("altair."):
            raise ModuleNotFoundError("No module named 'altair'", name="altair")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_altair)

"""Provenance recorded with every result: code version, environment, device, determinism flags."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import torch

_PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "transformers", "statsmodels", "emoe-bench")


@lru_cache(maxsize=1)
def git_state() -> dict:
    """Commit and dirty flag of the checkout this package runs from (None outside a git checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(device) -> dict:
    device = torch.device(device)
    info = {"device": str(device), "platform": platform.platform(), "processor": platform.machine(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.version.cuda}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def collect(device, exec_mode: str = "loop") -> dict:
    return {
        "git": git_state(),
        "versions": package_versions(),
        "device": device_info(device),
        "exec_mode": exec_mode,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "utc_date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }

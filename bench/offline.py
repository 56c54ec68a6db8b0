"""Keep Hugging Face libraries off the network: bench never downloads at run time.

``local_files_only=True`` alone is not enough: some transformers paths (e.g. a tokenizer by hub name
with nothing cached) still open a connection to huggingface.co first. :func:`hub_offline` switches
the process to the hub's offline mode (``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` in the
environment, inherited by worker processes, and the already-imported ``huggingface_hub`` constant),
so every load resolves from local files or fails at once. Call it before importing transformers.
"""

from __future__ import annotations

import os
import sys

OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_offline() -> None:
    """Force the Hugging Face hub's offline mode in this process (idempotent, cheap)."""
    for key in OFFLINE_ENV:
        os.environ[key] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported before us: its flag was read from the environment at import
        constants.HF_HUB_OFFLINE = True


def not_local_message(what: str, name: str) -> str:
    """The one line for a model/tokenizer name that is neither a local directory nor in the local cache."""
    return (f"{what} {name!r} is neither a local directory nor already in the local Hugging Face cache, and bench "
            "never downloads: pass a directory holding its files (config.json, weights / vocab.txt), or cache it "
            "beforehand with network access")

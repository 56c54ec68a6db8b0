"""What the commands print besides tables: the data banner and a run's summary over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SYNTHETIC_BANNER = ("[synthetic data] results below come from the embedded synthetic dataset: "
                    "they test the pipeline and are never comparable with the paper's numbers")


def print_data_banner(bundle) -> None:
    if bundle.source == "synthetic":
        print(SYNTHETIC_BANNER)
    else:
        files = ", ".join(f"{Path(f['path']).name} sha256 {str(f.get('sha256'))[:12]} ({f.get('status')})"
                          for f in bundle.files)
        print(f"[real data] {bundle.name}-{bundle.setting}: {files}")
        if not bundle.standard:
            print("[real data] not the standard published files: numbers are not comparable with the paper")
    for note in bundle.notes:
        print(f"[data] {note}")


def print_summary(records) -> None:
    if len(records) < 2:
        return
    keys = [k for k in ("mae", "corr", "non0_acc2", "has0_acc2", "acc7", "acc", "f1") if k in records[0].result["test"]]
    parts = []
    for k in keys:
        vals = np.array([r.result["test"].get(k) for r in records], dtype=float)
        parts.append(f"{k} {np.nanmean(vals):.4f} ± {np.nanstd(vals, ddof=1):.4f}")
    print(f"test over {len(records)} seeds (mean ± sample std): " + ", ".join(parts))

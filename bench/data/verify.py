"""``bench data verify``: hash every expected data file under a data root and compare with the tables."""

from __future__ import annotations

from pathlib import Path

from bench.data import checksums, mintrec, mmsa
from bench.data.families import expected_files
from bench.data.paths import is_dir
from bench.errors import UserError

__all__ = ["expected_files", "verify_root"]


def verify_root(data_root) -> list[dict]:
    """One row per expected file: dataset, setting, path, exists, sha256, expected_sha256, status.

    status: "ok" (matches the published/reference hash), "mismatch", "missing" or "unknown" (present,
    no reference hash). Files are hashed in full (streamed); nothing is loaded.
    """
    if data_root is None or str(data_root).strip() == "":
        raise UserError("verify needs a data root (--data-root or BENCH_DATA_ROOT)")
    root = Path(data_root).expanduser()
    if not is_dir(root):
        raise UserError(
            f"data root {root} is not a directory; expected a folder laid out as {mmsa.MMSA_LAYOUT} "
            f"and/or {mintrec.MINTREC_LAYOUT}"
        )
    out = []
    for dataset, setting, rel in expected_files():
        rec = checksums.file_record(root / rel, rel)
        out.append(
            {
                "dataset": dataset,
                "setting": setting,
                "path": rec["path"],
                "exists": rec["status"] != "missing",
                "sha256": rec["sha256"],
                "expected_sha256": rec["expected_sha256"],
                "status": rec["status"],
            }
        )
    return out

"""How a command trains its runs, as one typed object: built once from the command line (bench/cli/settings.py)
and passed down to planning, executors and the runner, which never see argparse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.runner import RunRequest
from bench.text_encoder import TextChoice


@dataclass(frozen=True)
class RunSettings:
    out: str = "results"
    device: str = "auto"
    force: bool = False
    quiet: bool = False
    threads: int | None = None  # torch intra-op threads (also each executor worker's)
    profile: str | None = None  # --profile as given (None: the source's default budget)
    epochs: int | None = None
    data_root: Path | None = None  # resolved from --data-root / $BENCH_DATA_ROOT; None = synthetic data
    clean_nan: bool = False
    data_seed: int = 0
    text: TextChoice = field(default_factory=TextChoice)
    # execution (validated; exec_mode already resolved from --exec and the device)
    exec_mode: str = "loop"
    amp: str = "off"
    compile: bool = False
    workers: int = 0
    graphs: str = "off"
    executor: str = "local"
    jobs: int = 1
    seeds_per_job: int = 0
    ray_address: str | None = None
    cpus_per_task: float = 1
    gpus_per_task: float | None = None

    @property
    def source(self) -> str:
        return "real" if self.data_root else "synthetic"

    def request(self, method: str, dataset: str, setting: str | None, seeds: list[int], overrides: dict) -> RunRequest:
        """The one place a :class:`RunRequest` is made from the command's settings."""
        return RunRequest(method=method, dataset=dataset, setting=setting, seeds=seeds, overrides=overrides,
                          epochs=self.epochs, data_root=str(self.data_root) if self.data_root else None, out=self.out,
                          device=self.device, force=self.force, profile=self.profile or "compact",
                          clean_nan=self.clean_nan, data_seed=self.data_seed, exec_mode=self.exec_mode, amp=self.amp,
                          compile=self.compile, workers=self.workers, graphs=self.graphs)

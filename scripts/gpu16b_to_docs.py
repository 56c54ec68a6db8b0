"""Turn the files of one ``scripts/gpu_issue16b.sh`` run into the repository's records (no GPU needed)::

    python scripts/gpu16b_to_docs.py --dir FILES            # print what it would do (nothing written)
    python scripts/gpu16b_to_docs.py --dir FILES --write    # do it

``--write``: copies the small files to ``docs/perf-h200/issue16b/``; merges the run's ``cuda.csv`` into
``results/throughput/cuda.csv`` (a re-measured line -- same method, family, setting, shapes, budget, exec mode,
k, text -- replaces the old one; the rest are kept); sets ``CAPTURE_EQUAL`` in ``bench/train/static_step.py``
to the configurations whose captured step equalled the loop step bitwise in this run or were already in it,
less those whose captured step differed in this run (``--graphs auto`` captures exactly the proven ones);
writes ``docs/performance.md`` section 7 (before "Limits and known costs", which becomes 8) with the figures
and the ``bench plan`` totals of Tables 1-6 + Figure 4 at 5 seeds (full profile, paper protocol with a random
bert-base), computed here from the merged throughput table with ``--exec auto`` and with ``--exec loop``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FILES = ("log.txt", "equality.json", "steps.json", "cuda.csv", "plan.txt", "summary.md")
TARGETS = (("table", 1), ("table", 2), ("table", 3), ("table", 4), ("table", 5), ("table", 6), ("figure", 4))
STATIC = REPO / "bench" / "train" / "static_step.py"
DOC = REPO / "docs" / "performance.md"


def rows(d: Path, name: str) -> list[dict]:
    p = d / name
    return json.loads(p.read_text())["rows"] if p.exists() else []


def disproven_keys(eq_rows: list[dict]) -> set[str]:
    """Keys whose captured step (graphs captured, torch's Adam) differed from the loop step: never captured by auto."""
    return {r["key"] for r in eq_rows if "key" in r and r.get("adam") == "default" and r.get("captured_sizes")
            and not r.get("capture_error") and (r.get("max_abs_param_diff") or r.get("max_abs_loss_diff"))}


def proven_keys(eq_rows: list[dict]) -> tuple[set[str], list[str]]:
    """Keys whose captured step equalled the loop bitwise (graphs captured, no error) in every row of theirs."""
    ok: dict[str, bool] = {}
    notes = []
    for r in eq_rows:
        if "key" not in r or "skipped" in r:
            continue
        good = (r.get("max_abs_param_diff") == 0.0 and r.get("max_abs_loss_diff") == 0.0 and not r.get("error")
                and not r.get("capture_error") and bool(r.get("captured_sizes")) and r.get("adam") == "default")
        ok[r["key"]] = ok.get(r["key"], True) and good
        if not good:
            notes.append(f"{r['key']}: param diff {r.get('max_abs_param_diff')}, captured {r.get('captured_sizes')}, "
                         f"{r.get('error') or r.get('capture_error') or ''}".rstrip(", "))
    return {k for k, v in ok.items() if v}, notes


def current_capture_equal() -> set[str]:
    m = re.search(r"CAPTURE_EQUAL = frozenset\(\{(.*?)\}\)", STATIC.read_text(), re.S)
    return set(re.findall(r'"([^"]+)"', m.group(1))) if m else set()


def set_capture_equal(keys: set[str]) -> None:
    text = STATIC.read_text()
    body = ", ".join(f'"{k}"' for k in sorted(keys))
    STATIC.write_text(re.sub(r"CAPTURE_EQUAL = frozenset\(\{.*?\}\)", f"CAPTURE_EQUAL = frozenset({{{body}}})", text,
                             count=1, flags=re.S))


def merge_throughput(new_csv: Path, into: Path) -> tuple[int, int]:
    from bench import throughput

    new = throughput.load(new_csv.stem, new_csv.parent)
    old = throughput.load(into.stem, into.parent)

    def key(e):
        return (e.method, e.family, e.setting, e.shapes, e.budget, e.exec_mode, e.k, e.text)

    fresh = {key(e) for e in new}
    kept = [e for e in old if key(e) not in fresh]
    throughput.write(kept + new, into)
    return len(new), len(kept)


def plan_totals(throughput_dir: Path, exec_mode: str) -> list[tuple[str, float, int, int]]:
    """(target, estimated seconds, runs, unknown configurations) per target, 5 seeds, full profile, paper protocol."""
    import tempfile

    from bench.cli import build_parser
    from bench.plan import table_plan

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, n in TARGETS:
            args = build_parser().parse_args(
                ["plan", f"--{kind}", str(n), "--seeds", "5x", "--device", "cuda", "--profile", "full", "--out", tmp,
                 "--throughput-dir", str(throughput_dir), "--text-model", "random:bert-base-uncased",
                 "--exec", exec_mode])
            rows_, _ = table_plan(args.table, args, figure=args.figure, log=lambda _: None)
            known = [r.seconds for r in rows_ if r.todo and r.seconds is not None]
            unknown = sum(1 for r in rows_ if r.todo and r.seconds is None)
            out.append((f"{kind} {n}", sum(known), sum(r.todo for r in rows_), unknown))
    return out


def section(d: Path, proven: set[str], notes: list[str], plans: dict, merged: tuple[int, int]) -> str:
    eq = rows(d, "equality.json")
    st = rows(d, "steps.json")
    meta = next((json.loads((d / f).read_text())["meta"] for f in ("equality.json", "steps.json")
                 if (d / f).exists()), {})
    lines = ["## 7. Second H200 run: `--graphs auto`, BERT mode, the CUDA throughput table (issue 16)", "",
             f"`scripts/gpu_issue16b.sh` on {meta.get('gpu', '?')} (torch {meta.get('torch', '?')}), "
             f"{meta.get('utc_date', '?')}; raw files in `docs/perf-h200/issue16b/`.", "",
             "**Captured step vs loop step** (torch's Adam, dropout on, 5 steps with a smaller last batch; "
             "`scripts/gpu_issue16.py equality`): bitwise equal for " + (", ".join(sorted(proven)) or "none") + "."]
    if notes:
        lines.append("Not equal or not captured: " + "; ".join(notes) + ".")
    for r in eq:
        if r.get("run", "").startswith("bench run"):
            lines.append(f"`bench run` EMOE (compact), 2 epochs, `--graphs auto` vs `off`: stored valid and test "
                         f"metrics equal: **{r['equal']}**; auto recorded `model.static_step` = "
                         f"{r.get('auto', {}).get('model_static_step')}.")
        elif r.get("run") == "train_static vs train":
            lines.append(f"Whole `train_static` (captured, Adam {r['adam']}) vs `train`: test MAE difference "
                         f"{r['test_mae_abs_diff']:.2e}.")
    auto = (current_capture_equal() - disproven_keys(eq)) | proven
    lines += ["", "So `--graphs auto` (the default) captures: " + ", ".join(sorted(auto))
              + " on CUDA, with torch's Adam (the loop path's numbers); never on CPU.", "",
              "| step case | batch | loop ms | busy | static ms | busy | speed-up | note |",
              "|---|---|---|---|---|---|---|---|"]
    for r in st:
        if "error" in r:
            lines.append(f"| {r['case']} | | | | | | | {r['error'][:100]} |")
            continue
        b, a = r["before"], r["after"]
        lines.append(f"| {r['case']} | {r['batch_size']} | {b['wall_ms']} | {b.get('gpu_busy', '-')} | "
                     f"{a.get('wall_ms', '-')} | {a.get('gpu_busy', '-')} | {r.get('speedup', '-')} | "
                     f"{a.get('skipped') or a.get('capture_error') or ''} |")
    lines += ["", f"Throughput: {merged[0]} measured lines merged into `results/throughput/cuda.csv` "
              f"({merged[1]} earlier lines kept).", "",
              "`bench plan`, Tables 1-6 + Figure 4, 5 seeds, `--profile full`, paper protocol "
              "(`--text-model random:bert-base-uncased`), H200-hours:", "",
              "| target | runs | " + " | ".join(f"--exec {m}" for m in plans) + " | unknown configs |",
              "|---|---|" + "---|" * len(plans) + "---|"]
    modes = list(plans)
    for i, (target, _, runs, _) in enumerate(plans[modes[0]]):
        cells = [f"{plans[m][i][1] / 3600:.2f}" for m in modes]
        unk = "/".join(str(plans[m][i][3]) for m in modes)
        lines.append(f"| {target} | {runs} | " + " | ".join(cells) + f" | {unk} |")
    tot = [sum(t[1] for t in plans[m]) / 3600 for m in modes]
    lines.append("| **all** | | " + " | ".join(f"**{t:.1f}**" for t in tot) + " | |")
    lines += ["", "procs rows are counted as the seeds one after another (an upper bound on one GPU); "
              "`--exec loop` rows use the loop+graphs lines where `--graphs auto` captures.", ""]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    start = doc.find("## 7. Second H200 run")
    if start >= 0:  # replace an earlier version of this section
        end = doc.find("\n## ", start + 5)
        doc = doc[:start] + text.rstrip() + "\n" + doc[end:]
    else:
        doc = doc.replace("## 7. Limits and known costs", text.rstrip() + "\n\n## 8. Limits and known costs", 1)
    DOC.write_text(doc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="the run's files (log.txt, equality.json, ...)")
    ap.add_argument("--write", action="store_true", help="write the records (default: print only)")
    args = ap.parse_args(argv)
    d = Path(args.dir)
    proven, notes = proven_keys(rows(d, "equality.json"))
    print("bitwise-equal captures:", sorted(proven), "| already in CAPTURE_EQUAL:", sorted(current_capture_equal()))
    for n in notes:
        print("  not proven:", n)
    target = REPO / "results" / "throughput" / "cuda.csv"
    if args.write:
        dest = REPO / "docs" / "perf-h200" / "issue16b"
        dest.mkdir(parents=True, exist_ok=True)
        for f in FILES:
            if (d / f).exists():
                shutil.copyfile(d / f, dest / f)
        merged = merge_throughput(d / "cuda.csv", target) if (d / "cuda.csv").exists() else (0, 0)
        set_capture_equal((current_capture_equal() - disproven_keys(rows(d, "equality.json"))) | proven)
        tp_dir = target.parent
    else:
        import tempfile

        tmp = Path(tempfile.mkdtemp())
        shutil.copyfile(target, tmp / "cuda.csv")
        merged = merge_throughput(d / "cuda.csv", tmp / "cuda.csv") if (d / "cuda.csv").exists() else (0, 0)
        tp_dir = tmp
    plans = {m: plan_totals(tp_dir, m) for m in ("auto", "loop")}
    text = section(d, proven, notes, plans, merged)
    print(text)
    if args.write:
        write_doc(text)
        print(f"wrote {DOC}, {target}, {STATIC} (CAPTURE_EQUAL), docs/perf-h200/issue16b/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

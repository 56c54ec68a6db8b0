"""The paper's figures as data (EMOE Figs. 4-6): which EMOE variants run on which data, what is drawn.

``bench figure N`` runs every missing run of figure N (finished runs are reused, so Figs. 5 and 6 reuse
Table 4's runs), then writes ``results/figures/figN-<data>.{png,pdf}`` plus ``figN-<data>.json`` with
the plotted numbers. Without a data root the embedded synthetic default is used; the console, the file
names and the figure title say so. docs/tables.md describes the defaults (grid, seeds, datasets).

* Fig. 4: sensitivity of α, λ1, λ2 and the router temperature t, each swept with the others at 0.1;
  mean ± sample-std bands over seeds per dataset/setting, plus their average (the paper plots that).
* Fig. 5: t-SNE (scikit-learn, fixed random_state) of the fused test features of EMOE, EMOE w/o UD
  and EMOE w/o MoME & UD, coloured by the sentiment label.
* Fig. 6: per-sample modality importance I = (1/(c+0.1)) / Σ (1/(c+0.1)), c = squared unimodal error
  (EMOE's own importance target), beside the learned router weights, for selected test samples; rank
  correlations between weights and importance (and, on synthetic data, the planted importance).
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.errors import UserError

# Light at import: bench/cli.py builds the ``figure`` parser from this module on every command, so the
# table registry (pandas, scipy, scikit-learn) and matplotlib are imported only when a figure is made.

MODALITY_LABELS = ("language", "vision", "audio")  # EMOE's [l, v, a] order (= Split.importance order)
PARAM_LABELS = {"alpha": "α", "lambda1": "λ1", "lambda2": "λ2", "temperature": "t"}
IMPORTANCE_EPS = 0.1  # EMOE.py:68, importance_target(norm="sum")


@dataclass(frozen=True)
class FigureSpec:
    number: int
    title: str
    kind: str  # "sensitivity" | "tsne" | "weights"
    rows: tuple = ()  # fixed EMOE variants (bench.tables.Row; Figs. 5, 6)
    families: tuple[str, ...] = ("mosi",)
    settings: tuple[str, ...] = ("aligned",)
    # the compact synthetic default (2 CPU cores): fewer datasets/settings/values/seeds
    compact_families: tuple[str, ...] = ("mosi",)
    compact_settings: tuple[str, ...] = ("aligned",)
    params: tuple[str, ...] = ()
    grid: tuple[float, ...] = ()
    compact_grid: tuple[float, ...] = ()
    default_value: float = 0.1
    seeds: dict = field(default_factory=lambda: {"real": 5, "synthetic": 3, "compact": 1})
    metrics: tuple[str, ...] = ("acc7", "acc2", "f1", "mae")
    notes: str = ""


REAL_COMPACT_NOTE = ("compact budget (--profile compact): EMOE d 64, 2 layers, <= 20 epochs, not the official "
                     "configuration")


@lru_cache(maxsize=1)
def figures() -> dict[int, FigureSpec]:
    """The figure registry (built on first use)."""
    from bench.tables import TABLES, Row

    t4 = {r.label: r for r in TABLES[4].rows}
    return {
        4: FigureSpec(
            number=4, title="Sensitivity of α, λ1, λ2 and t (EMOE Fig. 4)", kind="sensitivity",
            families=("mosi", "mosei"), settings=("aligned", "unaligned"),
            params=("alpha", "lambda1", "lambda2", "temperature"),
            grid=(0.01, 0.05, 0.1, 0.5, 1.0), compact_grid=(0.01, 0.1, 1.0),
            seeds={"real": 5, "synthetic": 3, "compact": 2},
            notes=("grid not given by the paper; the paper drops 'catastrophic' low-t outliers, nothing is "
                   "dropped here"),
        ),
        5: FigureSpec(
            number=5, title="t-SNE of fused test features (EMOE Fig. 5)", kind="tsne",
            rows=(Row("EMOE", "emoe", dict(t4["MoME + UD (EMOE)"].overrides)),
                  Row("EMOE w/o UD", "emoe", dict(t4["MoME only"].overrides)),
                  Row("EMOE w/o MoME & UD", "emoe", dict(t4["w/o MoME, w/o UD"].overrides))),
            seeds={"real": 1, "synthetic": 1, "compact": 1},
            notes="same runs as Table 4's rows (MoME+UD, MoME only, neither); first seed plotted",
        ),
        6: FigureSpec(
            number=6, title="Modality importance vs router weights (EMOE Fig. 6)", kind="weights",
            rows=(Row("EMOE", "emoe", {}),),
            seeds={"real": 1, "synthetic": 1, "compact": 1},
            notes="same run as Table 4's full row; heatmaps from the first seed, correlations over all seeds",
        ),
    }


FROZEN_TEXT_NOTE = "frozen text features (--text frozen), not the paper's fine-tuned BERT"


def require_figure(n: int) -> FigureSpec:
    reg = figures()
    if n not in reg:
        raise UserError(f"figure {n} is not available; available: {', '.join(map(str, sorted(reg)))}")
    return reg[n]


def _fmt_value(v: float) -> str:
    return f"{v:g}"


def light(source: str, profile: str | None) -> bool:
    """The compact budget: the default on synthetic data, on real data only when asked for."""
    from bench.tables import budget

    return budget(source, profile) == "compact"


def plan_figure(spec: FigureSpec, source: str, profile: str, user_sets: dict | None = None,
                grid: tuple[float, ...] | None = None, families: tuple[str, ...] | None = None,
                settings: tuple[str, ...] | None = None, text=None) -> list:
    """One planned run per (variant, dataset, setting). Fig. 4's variants are ``param=value`` rows and one
    ``default`` row (every parameter at 0.1, the same config as Table 4's full row)."""
    from bench.registry import get_method
    from bench.tables import PlannedRun, Row, dataset_name
    from bench.text_encoder import text_overrides

    small = light(source, profile)
    families = families or (spec.compact_families if small else spec.families)
    settings = settings or (spec.compact_settings if small else spec.settings)
    if spec.kind == "sensitivity":
        grid = tuple(grid or (spec.compact_grid if small else spec.grid))
        rows = [Row("default", "emoe", {})]
        rows += [Row(f"{p}={_fmt_value(v)}", "emoe", {p: _fmt_value(v)})
                 for p in spec.params for v in grid if not math.isclose(v, spec.default_value)]
    else:
        rows = list(spec.rows)
    out = []
    for fam in families:
        for setting in settings:
            for row in rows:
                ov = get_method(row.method).preset("compact") if small else {}
                ov.update(row.overrides)
                ov.update(text_overrides(get_method(row.method), fam, setting, text, ov))
                ov.update(user_sets or {})
                out.append(PlannedRun(row, setting, dataset_name(fam, source), ov))
    return out


def _with_data_files(planned: list, data_root, spec: FigureSpec) -> list:
    """The planned runs whose data files exist under ``data_root`` (the others are named and skipped)."""
    from bench.tables import missing_data_files

    keep, skipped = [], set()
    for p in planned:
        if missing_data_files(p.dataset, p.setting, data_root):
            skipped.add(f"{p.dataset} {p.setting}")
        else:
            keep.append(p)
    if not keep:
        others = [s for s in ("aligned", "unaligned") if not missing_data_files("mosi", s, data_root)]
        hint = f"; --settings {others[0]} runs it on the {others[0]} file" if others else ""
        raise UserError(f"figure {spec.number} needs {', '.join(sorted(skipped))} data that {data_root} does not "
                        f"have{hint}")
    if skipped:
        print(f"note: not run (no data file under the data root): {', '.join(sorted(skipped))}")
    return keep


def default_seeds(spec: FigureSpec, source: str, profile: str) -> int:
    return spec.seeds["compact"] if light(source, profile) else spec.seeds[source]


# ------------------------------------------------------------------------------------ numbers
def importance_from_errors(pred_lva: np.ndarray, labels: np.ndarray, eps: float = IMPORTANCE_EPS) -> np.ndarray:
    """EMOE's importance target (official ``sum`` normalisation): I = (1/(c+eps)) / Σ_m (1/(c+eps)),
    c = (y − ŷ_m)² per sample and modality. ``pred_lva`` (N, 3) in [l, v, a] order."""
    c = (np.asarray(labels, dtype=float).reshape(-1, 1) - np.asarray(pred_lva, dtype=float)) ** 2
    inv = 1.0 / (c + eps)
    return inv / inv.sum(axis=1, keepdims=True)


def rank_agreement(weights: np.ndarray, importance: np.ndarray) -> dict:
    """Spearman ρ pooled over all (sample, modality) cells, ρ per modality across samples (and their
    mean), and the share of samples whose largest weight sits on the most important modality."""
    from scipy.stats import spearmanr

    w, imp = np.asarray(weights, dtype=float), np.asarray(importance, dtype=float)
    per = [float(spearmanr(w[:, m], imp[:, m])[0]) for m in range(w.shape[1])]
    return {"rho_pooled": float(spearmanr(w.ravel(), imp.ravel())[0]), "rho_per_modality": per,
            "rho_modality_mean": float(np.nanmean(per)),
            "top1_agreement": float(np.mean(w.argmax(1) == imp.argmax(1)))}


def select_samples(importance: np.ndarray, per_modality: int = 4) -> np.ndarray:
    """Test samples for the heatmap: for each modality the ``per_modality`` samples where it matters most
    (highest importance), without repeats, in modality order."""
    chosen: list[int] = []
    for m in range(importance.shape[1]):
        picked = 0
        for i in np.argsort(-importance[:, m], kind="stable"):
            if int(i) not in chosen:
                chosen.append(int(i))
                picked += 1
                if picked == per_modality:
                    break
    return np.asarray(chosen)


def neighbour_label_error(embedding: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean |y_i − mean y of its k nearest neighbours| in the 2-D embedding: low = labels vary smoothly
    across the map (the 'gradient-like distribution' the paper asks for)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(labels) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(embedding)
    idx = nn.kneighbors(embedding, return_distance=False)[:, 1:]
    return float(np.mean(np.abs(labels - labels[idx].mean(axis=1))))


def tsne(features: np.ndarray, random_state: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(features)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # OpenMP oversubscription makes small t-SNE runs 10x slower on busy CPUs
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state,
                    max_iter=1000).fit_transform(np.asarray(features, dtype=np.float64))


def _preds(record) -> dict:
    path = Path(record.path) / "preds.npz"
    if not path.is_file():
        raise UserError(f"{record.path} has no preds.npz (rerun it with --force to export test outputs)")
    try:  # arrays only (allow_pickle stays False): a damaged or foreign file is a one-line error
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"{path}: unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "rerun that run with --force to rewrite it") from None


# ------------------------------------------------------------------------------------ provenance
def source_text(results: list[dict], source: str) -> str:
    first = results[0]
    if source == "synthetic":
        fps = sorted({f"{r['data']['name']}-{r['setting']} {r['data']['fingerprint'][:12]}" for r in results})
        return (f"SYNTHETIC data (profile {first['data'].get('profile')}; {', '.join(fps)}) — "
                "not comparable with the paper")
    shas = sorted({f"{Path(str(f.get('path'))).name} sha256 {str(f.get('sha256'))[:12]}"
                   for r in results for f in r["data"].get("files", [])})
    std = all(r["data"].get("standard") for r in results)
    return f"real data ({', '.join(shas)}{'' if std else '; NON-STANDARD files'})"


def provenance(results: list[dict], source: str) -> dict:
    commits = sorted({((r["provenance"].get("git") or {}).get("commit") or "unknown")[:10] for r in results})
    return {"data": source_text(results, source), "seeds": sorted({r["seed"] for r in results}),
            "commits": commits, "selection": sorted({r["selection"]["rule"] for r in results}),
            "dirty": any((r["provenance"].get("git") or {}).get("dirty") for r in results)}


def _footer(prov: dict, extra: str = "", width: int = 170) -> str:
    import textwrap

    seeds = ", ".join(map(str, prov["seeds"]))
    text = (f"{prov['data']}. Seeds {seeds}. Selection: best validation loss. "
            f"Commit {', '.join(prov['commits'])}{' (dirty)' if prov['dirty'] else ''}. {extra}").strip()
    return textwrap.fill(text, width=width)


# ------------------------------------------------------------------------------------ drawing
def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def sensitivity_frame(spec: FigureSpec, done: list):
    """Long frame: param, value, dataset, setting, metric, seed, score (the default row counts for
    every parameter at 0.1)."""
    import pandas as pd

    from bench.published import PAPER_METRIC_TO_OURS

    recs = []
    for p, records in done:
        if p.row.label == "default":
            pv = [(q, spec.default_value) for q in spec.params]
        else:
            q, v = p.row.label.split("=")
            pv = [(q, float(v))]
        for q, v in pv:
            for rec in records:
                for m in spec.metrics:
                    val = rec.result["test"].get(PAPER_METRIC_TO_OURS[m])
                    recs.append({"param": q, "value": v, "dataset": p.dataset, "setting": p.setting, "metric": m,
                                 "seed": rec.seed, "score": np.nan if val is None else float(val)})
    return pd.DataFrame(recs)


def render_sensitivity(spec: FigureSpec, done: list, source: str, outdir: Path) -> tuple[list[Path], dict]:
    from bench.tables import METRIC_LABELS

    plt, sns = _mpl()
    df = sensitivity_frame(spec, done)
    results = [r.result for _, recs in done for r in recs]
    prov = provenance(results, source)
    combos = sorted({(d, s) for d, s in zip(df["dataset"], df["setting"])})
    palette = dict(zip(combos, sns.color_palette("tab10", len(combos))))
    fig, axes = plt.subplots(len(spec.metrics), len(spec.params), figsize=(3.2 * len(spec.params),
                             2.4 * len(spec.metrics)), sharex=True, squeeze=False)
    summary = []
    for j, q in enumerate(spec.params):
        for i, m in enumerate(spec.metrics):
            ax = axes[i][j]
            scale = 1.0 if m == "mae" else 100.0
            sub = df[(df["param"] == q) & (df["metric"] == m)]
            for combo in combos:
                g = sub[(sub["dataset"] == combo[0]) & (sub["setting"] == combo[1])]
                agg = g.groupby("value")["score"].agg(["mean", "std", "count"]).reset_index().sort_values("value")
                x, mu, sd = agg["value"].to_numpy(), scale * agg["mean"].to_numpy(), scale * agg["std"].to_numpy()
                ax.plot(x, mu, marker="o", ms=3, lw=1.2, color=palette[combo], label=f"{combo[0]} {combo[1]}")
                ax.fill_between(x, mu - np.nan_to_num(sd), mu + np.nan_to_num(sd), color=palette[combo], alpha=0.2)
                for _, r in agg.iterrows():
                    summary.append({"param": q, "metric": m, "dataset": combo[0], "setting": combo[1],
                                    "value": float(r["value"]), "mean": float(r["mean"]),
                                    "std": None if math.isnan(r["std"]) else float(r["std"]), "n": int(r["count"])})
            if len(combos) > 1:  # the paper's curve: the average over datasets/settings
                avg = sub.groupby(["value", "dataset", "setting"])["score"].mean().groupby("value").mean()
                ax.plot(avg.index, scale * avg.to_numpy(), color="black", lw=1.8, ls="--", label="average")
            ax.set_xscale("log")
            if i == 0:
                ax.set_title(f"{PARAM_LABELS[q]} (others at {spec.default_value:g})")
            if j == 0:
                ax.set_ylabel(METRIC_LABELS[m] + ("" if m == "mae" else " (%)"))
            if i == len(spec.metrics) - 1:
                ax.set_xlabel(PARAM_LABELS[q])
            ax.axvline(spec.default_value, color="grey", lw=0.8, ls=":")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.01))
    n = df.groupby(["param", "value", "dataset", "setting", "metric"])["seed"].nunique()
    fig.suptitle(f"Fig. 4 — {spec.title}\n{prov['data']}\nmean ± sample std over n={n.min()}"
                 f"{'' if n.min() == n.max() else '-' + str(n.max())} seeds; test metrics at the best-validation "
                 "checkpoint", fontsize=9)
    fig.text(0.5, -0.05, _footer(prov, spec.notes + "."), ha="center", va="top", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    paths = _save(fig, outdir / f"fig{spec.number}-{source}")
    plt.close(fig)
    return paths, {"points": summary, "grid": sorted(df["value"].unique().tolist()), **prov}


def render_tsne(spec: FigureSpec, done: list, source: str, outdir: Path) -> tuple[list[Path], dict]:
    plt, sns = _mpl()
    results = [r.result for _, recs in done for r in recs]
    prov = provenance(results, source)
    panels = [(p, recs[0]) for p, recs in done]  # first seed
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False, layout="constrained")
    numbers = {}
    sc = None
    for ax, (p, rec) in zip(axes[0], panels):
        out = _preds(rec)
        if "fused" not in out:
            raise UserError(f"{rec.path}: preds.npz has no fused features")
        emb = tsne(out["fused"].reshape(len(out["label"]), -1))
        y = out["label"].astype(float)
        err = neighbour_label_error(emb, y)
        numbers[p.row.label] = {"seed": rec.seed, "neighbour_label_mae": err, "n": int(len(y)),
                                "test_mae": rec.result["test"].get("mae"), "run": str(rec.path)}
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=y, cmap="viridis", vmin=-3, vmax=3, s=12, edgecolors="none")
        ax.set_title(f"{p.row.label}\nneighbour-label MAE {err:.3f} (k=10), test MAE "
                     f"{rec.result['test'].get('mae', float('nan')):.3f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    cb = fig.colorbar(sc, ax=axes[0].tolist(), fraction=0.025, pad=0.01)
    cb.set_label("sentiment label (lighter = more positive)")
    ds = ", ".join(sorted({f"{p.dataset}-{p.setting}" for p, _ in panels}))
    fig.suptitle(f"Fig. 5 — {spec.title}: {ds} test set, seed {panels[0][1].seed}\n{prov['data']}", fontsize=9)
    fig.text(0.45, -0.02, _footer(prov, "t-SNE: scikit-learn, PCA init, random_state 0, perplexity min(30, (n-1)/3). "
                                  + spec.notes + ".", 190), ha="center", va="top", fontsize=7)
    paths = _save(fig, outdir / f"fig{spec.number}-{source}")
    plt.close(fig)
    return paths, {"panels": numbers, **prov}


def render_weights(spec: FigureSpec, done: list, source: str, outdir: Path, bundles: dict) -> tuple[list[Path], dict]:
    plt, sns = _mpl()
    from matplotlib.patches import Rectangle

    results = [r.result for _, recs in done for r in recs]
    prov = provenance(results, source)
    p, records = done[0]
    bundle = bundles.get((p.dataset, p.setting))
    planted = None
    if bundle is not None and bundle.splits["test"].importance is not None:
        planted = bundle.splits["test"].importance.cpu().numpy().astype(float)
    per_seed = []
    for rec in records:
        out = _preds(rec)
        if "weights" not in out or not all(k in out for k in ("pred_l", "pred_v", "pred_a")):
            raise UserError(f"{rec.path}: preds.npz lacks weights/pred_l/pred_v/pred_a")
        pred = np.stack([out["pred_l"], out["pred_v"], out["pred_a"]], axis=1).reshape(len(out["label"]), 3)
        imp = importance_from_errors(pred, out["label"])
        row = {"seed": rec.seed, "vs_error_importance": rank_agreement(out["weights"], imp)}
        if planted is not None:
            row["vs_planted"] = rank_agreement(out["weights"], planted)
            row["error_importance_vs_planted"] = rank_agreement(imp, planted)
        per_seed.append((row, out, imp))
    rows = [r for r, _, _ in per_seed]

    def agg(key, stat):
        v = np.array([r[key][stat] for r in rows if key in r], dtype=float)
        return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else math.nan)

    _, out0, imp0 = per_seed[0]
    sel = select_samples(imp0)
    panels = [("importance I from unimodal errors\n(EMOE's target: (1/(c+0.1))/Σ, c = (y−ŷ_m)²)", imp0[sel]),
              ("learned router weights w", out0["weights"][sel])]
    if planted is not None:
        panels.append(("planted importance (synthetic ground truth)", planted[sel]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(0.62 * len(sel) + 2.5, 1.55 * len(panels) + 1.6),
                             squeeze=False)
    for ax, (title, mat) in zip(axes[:, 0], panels):
        sns.heatmap(mat.T, ax=ax, vmin=0, vmax=1, cmap="Blues", annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                    cbar=True, xticklabels=[str(int(i)) for i in sel], yticklabels=MODALITY_LABELS,
                    linewidths=0.5, linecolor="white")
        for col, r in enumerate(mat.argmax(axis=1)):  # frame the largest value per column, as the paper does
            ax.add_patch(Rectangle((col, r), 1, 1, fill=False, edgecolor="red", lw=1.6))
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="y", rotation=0, labelsize=7)
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("test sample index (4 per modality with the highest importance I)")
    lines = []
    m, s = agg("vs_error_importance", "rho_pooled")
    tm, _ = agg("vs_error_importance", "top1_agreement")
    lines.append(f"weights vs importance-from-errors: Spearman ρ (pooled) {m:.3f}"
                 f"{'' if math.isnan(s) else f' ± {s:.3f}'}, top-1 agreement {tm:.2f}")
    if planted is not None:
        m, s = agg("vs_planted", "rho_pooled")
        mm, _ = agg("vs_planted", "rho_modality_mean")
        lines.append(f"weights vs planted importance: ρ (pooled) {m:.3f}{'' if math.isnan(s) else f' ± {s:.3f}'}, "
                     f"mean per-modality ρ {mm:.3f}")
    fig.suptitle(f"Fig. 6 — {spec.title}: {p.dataset}-{p.setting} test set, seed {records[0].seed} "
                 f"(ρ over {len(rows)} seed(s))\n" + "\n".join(lines) + f"\n{prov['data']}", fontsize=8)
    fig.text(0.5, -0.04, _footer(prov, spec.notes + ".", 150), ha="center", va="top", fontsize=6.5)
    fig.tight_layout()
    paths = _save(fig, outdir / f"fig{spec.number}-{source}")
    plt.close(fig)
    return paths, {"per_seed": rows, "samples": sel.tolist(), "summary": lines, **prov}


# ------------------------------------------------------------------------------------ command
def add_figure_parser(sub, add_data_args) -> None:
    """The ``figure`` subcommand (called from bench/cli.py's parser)."""
    f = sub.add_parser("figure", help="run the missing runs of paper figure N (4, 5, 6) and draw it")
    f.add_argument("number", type=int, help="figure number (4: sensitivity, 5: t-SNE, 6: router weights)")
    f.add_argument("--seeds", default=None, help="a list 1111,1112, a range 1111-1115 or a count 3x; a lone "
                                                  "number is one seed (default: fig. 4 2x on compact synthetic, "
                                                  "3x synthetic full, 5x real; figs. 5-6: 1x)")
    f.add_argument("--epochs", type=int, default=None, help="cap on training epochs (sets max_epochs)")
    f.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[],
                   help="override an EMOE hyper-parameter (repeatable)")
    f.add_argument("--grid", default=None, help="fig. 4: comma list of values (default 0.01,0.05,0.1,0.5,1; "
                                                 "compact synthetic 0.01,0.1,1)")
    f.add_argument("--datasets", default=None, help="comma list of families, e.g. mosi,mosei (fig. 4 default: "
                                                     "mosi,mosei; compact synthetic: mosi)")
    f.add_argument("--settings", default=None, help="comma list: aligned,unaligned (fig. 4 default both, "
                                                     "figs. 5-6 aligned; compact synthetic: aligned)")
    f.add_argument("--out", default="results", help="results directory (default: results)")
    f.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    f.add_argument("--force", action="store_true", help="rerun finished runs")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads")
    add_data_args(f)
    from bench.dispatch import add_execution_args

    add_execution_args(f)
    f.set_defaults(func=cmd_figure)


def _csv(text: str | None, cast=str) -> tuple | None:
    if not text:
        return None
    try:
        return tuple(cast(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{text!r}: expected a comma list of numbers") from None


def cmd_figure(args) -> int:
    from bench.cli import SYNTHETIC_BANNER
    from bench.config import parse_sets
    from bench.tables import _available, data_source, execute
    from bench.train.seeding import seeds_from_arg

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: expected a positive number")
        import torch

        torch.set_num_threads(args.threads)
    spec = require_figure(args.number)
    from bench.store import require_results_dir

    require_results_dir(args.out)
    source, data_root = data_source(args)
    seeds = seeds_from_arg(args.seeds, default_seeds(spec, source, args.profile))
    grid = _csv(args.grid, float)
    if grid and any(v <= 0 for v in grid):
        raise UserError(f"--grid {args.grid}: values must be positive")
    families, settings = _csv(args.datasets), _csv(args.settings)
    if spec.kind != "sensitivity" and (grid or families):
        raise UserError("--grid and --datasets apply to figure 4 only")
    for s in settings or ():
        if s not in ("aligned", "unaligned"):
            raise UserError(f"--settings: unknown setting {s!r} (aligned, unaligned)")
    for fam in families or ():
        if fam not in ("mosi", "mosei"):
            raise UserError(f"--datasets: figure {spec.number} uses mosi and/or mosei, not {fam!r}")
    if not _available("emoe"):
        raise UserError("figure needs the emoe method, which is not registered")
    if source == "real" and light(source, args.profile):  # say so on the figure, as table captions do
        spec = dataclasses.replace(spec, notes=f"{spec.notes}; {REAL_COMPACT_NOTE}" if spec.notes else
                                   REAL_COMPACT_NOTE)
    from bench.text_encoder import refuse_silent_frozen, text_choice

    choice = text_choice(args)
    planned = plan_figure(spec, source, args.profile, parse_sets(args.sets), grid, families, settings, text=choice)
    if source == "real":
        planned = _with_data_files(planned, data_root, spec)
        refuse_silent_frozen(planned, source, choice, f"figure {spec.number}", args.epochs)
        text_note = FROZEN_TEXT_NOTE if choice.frozen else f"fine-tuned text encoder {choice.model}"
        spec = dataclasses.replace(spec, notes=f"{spec.notes}; {text_note}" if spec.notes else text_note)
    print(f"Figure {spec.number}: {spec.title}")
    if source == "synthetic":
        print(SYNTHETIC_BANNER)
    print(f"{len(planned)} configuration(s) × {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
          "finished runs are reused")
    done, bundles = execute(planned, args, seeds, data_root)
    outdir = Path(args.out) / "figures"
    if spec.kind == "sensitivity":
        paths, numbers = render_sensitivity(spec, done, source, outdir)
    elif spec.kind == "tsne":
        paths, numbers = render_tsne(spec, done, source, outdir)
        for k, v in numbers["panels"].items():
            print(f"  {k}: neighbour-label MAE {v['neighbour_label_mae']:.3f} on the t-SNE map (lower = smoother)")
    else:
        paths, numbers = render_weights(spec, done, source, outdir, bundles)
        for line in numbers["summary"]:
            print("  " + line)
    side = outdir / f"fig{spec.number}-{source}.json"
    side.write_text(json.dumps({"figure": spec.number, "title": spec.title, "source": source, "notes": spec.notes,
                                **numbers},
                               indent=1, default=str))
    print("written: " + ", ".join(str(p) for p in [*paths, side]))
    return 0

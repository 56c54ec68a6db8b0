"""Figure drawing (matplotlib/seaborn, imported on first use): Fig. 4 curves, Fig. 5 t-SNE maps, Fig. 6 heatmaps.
Each renderer writes ``fig<N>-<data>.{png,pdf}`` and returns the paths and the plotted numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.report.figure_numbers import (
    footer,
    importance_from_errors,
    neighbour_label_error,
    provenance,
    rank_agreement,
    read_preds,
    select_samples,
    tsne,
)
from bench.report.figure_specs import MODALITY_LABELS, PARAM_LABELS, FigureSpec
from bench.report.frames import sensitivity_frame
from bench.report.specs import METRIC_LABELS


# ------------------------------------------------------------------------------------ drawing
def _mpl():
    import matplotlib  # lazy: matplotlib/seaborn load only when a figure is drawn

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


def render_sensitivity(spec: FigureSpec, done: list, source: str, outdir: Path) -> tuple[list[Path], dict]:
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
    fig.text(0.5, -0.05, footer(prov, spec.notes + "."), ha="center", va="top", fontsize=7)
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
        out = read_preds(rec)
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
    fig.text(0.45, -0.02, footer(prov, "t-SNE: scikit-learn, PCA init, random_state 0, perplexity min(30, (n-1)/3). "
                                  + spec.notes + ".", 190), ha="center", va="top", fontsize=7)
    paths = _save(fig, outdir / f"fig{spec.number}-{source}")
    plt.close(fig)
    return paths, {"panels": numbers, **prov}


def render_weights(spec: FigureSpec, done: list, source: str, outdir: Path, bundles: dict) -> tuple[list[Path], dict]:
    plt, sns = _mpl()
    from matplotlib.patches import Rectangle  # lazy: see _mpl

    results = [r.result for _, recs in done for r in recs]
    prov = provenance(results, source)
    p, records = done[0]
    bundle = bundles.get((p.dataset, p.setting))
    planted = None
    if bundle is not None and bundle.splits["test"].importance is not None:
        planted = bundle.splits["test"].importance.cpu().numpy().astype(float)
    per_seed = []
    for rec in records:
        out = read_preds(rec)
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
    fig.text(0.5, -0.04, footer(prov, spec.notes + ".", 150), ha="center", va="top", fontsize=6.5)
    fig.tight_layout()
    paths = _save(fig, outdir / f"fig{spec.number}-{source}")
    plt.close(fig)
    return paths, {"per_seed": rows, "samples": sel.tolist(), "summary": lines, **prov}

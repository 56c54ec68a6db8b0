"""The numbers behind Figs. 5-6 and every figure's provenance line: importance targets, rank agreement,
t-SNE, sample selection, stored test outputs."""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from bench.errors import UserError
from bench.report.figure_specs import IMPORTANCE_EPS


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
    from sklearn.neighbors import NearestNeighbors  # lazy: scikit-learn only when a figure is drawn

    k = min(k, len(labels) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(embedding)
    idx = nn.kneighbors(embedding, return_distance=False)[:, 1:]
    return float(np.mean(np.abs(labels - labels[idx].mean(axis=1))))


def tsne(features: np.ndarray, random_state: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE  # lazy: scikit-learn only when a figure is drawn

    n = len(features)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    from threadpoolctl import threadpool_limits  # lazy: with scikit-learn, only for t-SNE

    with threadpool_limits(limits=1):  # OpenMP oversubscription makes small t-SNE runs 10x slower on busy CPUs
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state,
                    max_iter=1000).fit_transform(np.asarray(features, dtype=np.float64))


def read_preds(record) -> dict:
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


def footer(prov: dict, extra: str = "", width: int = 170) -> str:
    seeds = ", ".join(map(str, prov["seeds"]))
    text = (f"{prov['data']}. Seeds {seeds}. Selection: best validation loss. "
            f"Commit {', '.join(prov['commits'])}{' (dirty)' if prov['dirty'] else ''}. {extra}").strip()
    return textwrap.fill(text, width=width)

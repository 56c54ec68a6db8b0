"""When MIntRec data count as the standard files, although thuiar/MIntRec publishes no checksum.

Standard MIntRec (EMOE Table 3 comparable with the paper) = the split files match the reference copies of
the official tsv files (SHA-256, bench.data.checksums.MINTREC_SHA256) with the published split sizes
1334/445/445, and every sample's features have the published shapes: audio (T_a, 768) wav2vec 2.0 with
1 <= T_a <= 480, video (T_v, 1, 256) (or squeezed (T_v, 256)) with 1 <= T_v <= 230 (thuiar/MIntRec
data/audio_pre.py, video_pre.py). The feature pickles' own SHA-256 is
recorded with every result, so a later published checksum can still be checked against it.
"""

from __future__ import annotations

import numpy as np

from bench.data.families import MINTREC

STANDARD_SPLIT_SIZES = MINTREC.split_sizes
AUDIO_MAX_FRAMES, AUDIO_DIM = MINTREC.shapes["unaligned"]["audio"]
VIDEO_MAX_FRAMES, VIDEO_DIM = MINTREC.shapes["unaligned"]["vision"]
BASIS = (f"standard MIntRec established by split sizes {{sizes}} and feature shapes (audio (T<={AUDIO_MAX_FRAMES}, "
         f"{AUDIO_DIM}), video (T<={VIDEO_MAX_FRAMES}, {VIDEO_DIM})), not by checksum: no checksum is published for "
         "the feature pickles (sha256 recorded)")


def _shape(a) -> tuple:
    return tuple(getattr(a, "shape", np.shape(a)))


def feature_problem(feats: dict, keys, modality: str) -> str | None:
    """The first sample whose features do not have the published shape, described; None when all do."""
    dim, max_t = (AUDIO_DIM, AUDIO_MAX_FRAMES) if modality == "audio" else (VIDEO_DIM, VIDEO_MAX_FRAMES)
    for key in keys:
        shape = _shape(feats[key])
        if modality == "video" and len(shape) == 3 and shape[1] == 1:
            shape = (shape[0], shape[2])
        if len(shape) != 2 or shape[1] != dim or not 1 <= shape[0] <= max_t:
            want = f"(T<={max_t}, {dim})" if modality == "audio" else f"(T<={max_t}, 1, {dim})"
            return f"{modality} of {key} has shape {_shape(feats[key])}, published {want}"
    return None


def standard_mintrec(files: list[dict], sizes: tuple[int, ...], audio: dict, video: dict, keys) -> tuple[bool, str]:
    """(standard, one-line reason). ``files``: the five file records (three tsv first), ``sizes``: train/valid/test
    sample counts, ``audio``/``video``: the feature dicts, ``keys``: every sample key of the three splits."""
    split_sizes = "/".join(map(str, STANDARD_SPLIT_SIZES))
    bad_tsv = [f["path"] for f in files[:3] if f["status"] != "ok"]
    if bad_tsv:
        return False, (f"not standard MIntRec: split file(s) {', '.join(bad_tsv)} differ from the official tsv "
                       "files (sha256)")
    if tuple(sizes) != STANDARD_SPLIT_SIZES:
        return False, f"not standard MIntRec: split sizes {'/'.join(map(str, sizes))}, published {split_sizes}"
    problem = feature_problem(audio, keys, "audio") or feature_problem(video, keys, "video")
    if problem:
        return False, f"not standard MIntRec: {problem}"
    return True, BASIS.format(sizes=split_sizes)

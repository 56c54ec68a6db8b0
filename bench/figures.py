"""Old import path of the figure modules, kept for scripts and branches written against it: the figures now live
in bench/report (figure_specs, planning, figure_numbers, figure_render) and ``bench figure`` in
bench/cli/figure_cmd.py. Import from there; this module re-exports only."""

from bench.report.figure_numbers import (
                                         importance_from_errors,
                                         neighbour_label_error,
                                         provenance,
                                         rank_agreement,
                                         read_preds,
                                         select_samples,
                                         source_text,
                                         tsne,
)
from bench.report.figure_render import render_sensitivity, render_tsne, render_weights
from bench.report.figure_specs import FigureSpec, figures, require_figure
from bench.report.frames import sensitivity_frame
from bench.report.planning import default_seeds, plan_figure

__all__ = ["FigureSpec", "default_seeds", "figures", "importance_from_errors", "neighbour_label_error",
           "plan_figure", "provenance", "rank_agreement", "read_preds", "render_sensitivity", "render_tsne",
           "render_weights", "require_figure", "select_samples", "sensitivity_frame", "source_text", "tsne"]

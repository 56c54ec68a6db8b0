"""Old import path of the table modules, kept for scripts and branches written against it: the tables now live
in bench/report (specs, planning, frames, captions, render) and ``bench run --table`` in bench/cli/table_cmd.py.
Import from there; this module re-exports only."""

from bench.report.captions import caption, text_caption
from bench.report.frames import (
                                 FROZEN_TAG,
                                 bert_in_paper,
                                 csv_frame,
                                 display_frame,
                                 n_comparisons,
                                 row_text,
                                 seeds_note,
                                 shows_published,
                                 table_frame,
)
from bench.report.planning import (
                                 PlannedRun,
                                 budget,
                                 check_sets_used,
                                 choose_settings,
                                 dataset_name,
                                 missing_data_files,
                                 plan,
                                 sets_for,
                                 unsupported,
)
from bench.report.render import frame_to_latex, frame_to_markdown, latex_escape, render
from bench.report.specs import (
                                 DEFAULT_TABLE_SEEDS,
                                 METRIC_LABELS,
                                 PUBLISHED_TAG,
                                 SUITE_METHODS,
                                 TABLES,
                                 Row,
                                 TableSpec,
                                 metric_key,
                                 metric_label,
                                 published_row,
                                 require_table,
)

__all__ = ["DEFAULT_TABLE_SEEDS", "FROZEN_TAG", "METRIC_LABELS", "PUBLISHED_TAG", "SUITE_METHODS", "TABLES",
           "PlannedRun", "Row", "TableSpec", "bert_in_paper", "budget", "caption", "check_sets_used",
           "choose_settings", "csv_frame", "dataset_name", "display_frame", "frame_to_latex", "frame_to_markdown",
           "latex_escape", "metric_key", "metric_label", "missing_data_files", "n_comparisons", "plan",
           "published_row", "render", "require_table", "row_text", "seeds_note", "sets_for", "shows_published",
           "table_frame", "text_caption", "unsupported"]

"""EMOE (CVPR 2025): Mixture of Modality Experts + Unimodal Distillation.

Importing the package registers the methods ``emoe`` (official code) and ``emoe-paper`` (paper text).
"""

from emoe import config, method, model, objective, router  # noqa: F401  (registration side effects)
from emoe.config import EMOEHParams, preset
from emoe.method import EMOE, EMOEPaper
from emoe.model import EMOENet, count_parameters

__all__ = ["EMOE", "EMOEHParams", "EMOENet", "EMOEPaper", "count_parameters", "preset"]

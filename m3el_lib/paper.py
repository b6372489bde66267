"""The paper's own reference numbers (arXiv 2410.18096), in one place.

These are the M³EL paper's figures on ITS data, quoted from its abstract; never results of ours.
The book shows them only as marked references beside our numbers.
"""
from __future__ import annotations

RELEASE_INSTANCES = 79_625  # instances in the release
RELEASE_TASKS = 9
RELEASE_TOPICS = 5
PAPER_EXISTING_MODELS_ACC = (0.494, 0.758)  # ACC of existing models on M³EL
PAPER_CLIP_ND_GAIN_POINTS = (9.3, 25.0)  # CLIP_ND's average improvement, in points

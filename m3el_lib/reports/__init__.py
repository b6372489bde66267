"""Presentation: one figure style and one `save_figure` (`style`), tables, the statistics figures
(`stats_figures`), the training and results tables (`training`), model cards (`model_card`) and
the paper's own reference numbers (`paper`). Nothing below the pipelines imports this package."""

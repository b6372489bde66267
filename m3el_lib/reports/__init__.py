"""Presentation: one figure style and one `save_figure` (`style`), tables, the statistics figures
(`stats_figures`), the training and results tables (`training`), and model cards
(`model_card`). Nothing below the pipelines imports this package."""

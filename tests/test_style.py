"""The one figure style (m3el_lib.reports.style): column width, grey-scale-proof series, alt text."""
from __future__ import annotations

import colorsys

import matplotlib.colors as mcolors
import numpy as np

from m3el_lib.reports import style


def test_a_figure_is_never_wider_than_the_column_and_keeps_its_aspect():
    wide = style.new_figure(14.0, 6.0)
    assert tuple(wide.get_size_inches()) == (style.COLUMN_WIDTH, 3.0)
    narrow = style.new_figure(4.0, 3.0)
    assert tuple(narrow.get_size_inches()) == (4.0, 3.0)


def test_every_text_size_is_legible_at_the_column_width():
    sizes = [value for key, value in style.RC.items() if key.endswith(("size", "fontsize")) and isinstance(value, (int, float))]
    assert sizes and min(sizes) >= 8


def test_series_differ_in_grey_scale_or_by_hatch():
    lightness = [colorsys.rgb_to_hls(*mcolors.to_rgb(c))[1] for c in style.OKABE_ITO]
    first_four = lightness[:4]
    # neighbouring series colours differ in lightness, so they stay apart in grey-scale
    assert all(abs(a - b) > 0.1 for a, b in zip(first_four, first_four[1:]))
    assert len({style.hatch(i) for i in range(len(style.HATCHES))}) == len(style.HATCHES)


def test_alt_text_reads_titles_axes_and_legend_unless_described():
    with style.style():
        fig = style.new_figure(7, 3)
        ax = fig.subplots()
        for i, name in enumerate(["CLIP_ND", "chance"]):
            ax.bar(np.arange(3) + i * 0.4, [0.2, 0.5, 0.7], 0.4, label=name, hatch=style.hatch(i))
        ax.set(title="Acc@1 per task", xlabel="task", ylabel="Acc@1")
        style.legend_outside(fig, ax)
    text = style.alt_text(fig)
    assert text.startswith("Chart: Acc@1 per task; x: task; y: Acc@1") and "legend: CLIP_ND, chance" in text
    assert fig.legends and not ax.get_legend()  # the legend is the figure's, outside the axes
    style.describe(fig, "Two bar series,\n  three tasks.")
    assert style.alt_text(fig) == "Two bar series, three tasks."


def test_notebook_png_carries_alt_text_and_its_display_width():
    fig = style.describe(style.new_figure(5, 2), "A blank figure.")
    fig.subplots().plot([0, 1], [0, 1])
    data, metadata = style.figure_png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert metadata["alt"] == "A blank figure."
    pixels = int.from_bytes(data[16:20], "big")
    assert metadata["width"] == round(pixels * style.DISPLAY_DPI / style.PNG_DPI)
    assert metadata["width"] <= style.COLUMN_WIDTH * style.DISPLAY_DPI

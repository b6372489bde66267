"""One figure style for the project, one `save_figure`, and the alt text of every figure.

Figures are built on bare `matplotlib.figure.Figure` objects with an Agg canvas, never through
pyplot, so the library neither needs a display nor changes a notebook's backend. `save_figure`
writes PNG and SVG atomically and reproducibly (no dates in the metadata), with a provenance file
beside each when asked.

The style is made for the book's column (`COLUMN_WIDTH`): `new_figure` never makes a figure wider,
so its 8-11 pt text is printed at that size on the page. Colours are Okabe and Ito's palette
(distinct for the common colour-vision deficiencies); where colour is the only cue, bars also get
hatches (`HATCHES`) and lines dash patterns, so a grey-scale print still tells them apart. Legends
go outside the data (`legend_outside`). Every figure has an alt text: the one given with
`describe`, else one read off its titles, axis labels and legend (`alt_text`); in a notebook the
first `new_figure` makes IPython show figures as PNG with that text in the output's metadata,
where the book runner picks it up.
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import matplotlib
import seaborn as sns
from cycler import cycler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..data.provenance import write_provenance
from ..fsutil import atomic_write_bytes
from ..timing import timed

# Okabe & Ito (2008), ordered so that neighbours also differ in lightness.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
PALETTE = list(OKABE_ITO)
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1, 1, 1)))
GOLD_COLOUR = OKABE_ITO[0]  # the mark of a gold answer (dark in grey-scale too)
NEUTRAL_COLOUR = "0.55"  # frames and guides that carry no data
COLUMN_WIDTH = 7.0  # inches: the book's text column at the figure dpi (about 700 px)
DISPLAY_DPI = 100  # a figure is shown at this many pixels per inch (rendered at PNG_DPI for sharpness)
PNG_DPI = 150
ALT_ATTRIBUTE = "m3el_alt"
# One style for every figure: seaborn's whitegrid, text no smaller than 8 pt at the column width,
# text kept as text in SVG.
RC = {"svg.fonttype": "none", "svg.hashsalt": "m3el", "figure.dpi": DISPLAY_DPI, "savefig.dpi": PNG_DPI,
      "font.size": 9, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
      "legend.fontsize": 9, "legend.title_fontsize": 9, "legend.frameon": False,
      "axes.prop_cycle": cycler(color=PALETTE) + cycler(linestyle=LINESTYLES),
      "hatch.linewidth": 0.8, "lines.linewidth": 1.8}
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


@contextmanager
def style() -> Iterator[None]:
    """The project's plotting style, applied only inside the block (no global changes)."""
    with matplotlib.rc_context(RC), sns.axes_style("whitegrid"), sns.plotting_context("notebook", rc=RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure with its own Agg canvas and constrained layout (legends and labels get room),
    never wider than the book's column: a wider request is scaled down, aspect ratio kept."""
    if width > COLUMN_WIDTH:
        width, height = COLUMN_WIDTH, height * COLUMN_WIDTH / width
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, attached to this figure only
    register_notebook_display()
    return fig


def hatch(index: int) -> str:
    """The hatch of the `index`-th series of bars (the colour's second, grey-scale-proof cue)."""
    return HATCHES[index % len(HATCHES)]


def legend_outside(fig: Figure, ax: Any = None, columns: int = 3, **kwargs: Any) -> Any:
    """One legend for the figure, below the axes (outside the data); `ax` None: all axes' entries."""
    axes = [ax] if ax is not None else fig.axes
    handles, labels = [], []
    for each in axes:
        for handle, label in zip(*each.get_legend_handles_labels()):
            if label not in labels and not label.startswith("_"):
                handles.append(handle)
                labels.append(label)
    return fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(columns, len(labels))), **kwargs)


def describe(fig: Figure, text: str) -> Figure:
    """Give `fig` its alt text (what a reader who cannot see it should be told)."""
    setattr(fig, ALT_ATTRIBUTE, " ".join(text.split()))
    return fig


def alt_text(fig: Figure) -> str:
    """The figure's alt text: the one `describe` gave, else its titles, axes and legend in words."""
    given = getattr(fig, ALT_ATTRIBUTE, "")
    if given:
        return given
    parts = []
    if fig._suptitle is not None and fig._suptitle.get_text().strip():  # noqa: SLF001 - no public getter
        parts.append(fig._suptitle.get_text().strip())  # noqa: SLF001
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    for ax in panels:
        words = [ax.get_title().strip()] if ax.get_title().strip() else []
        if ax.get_xlabel().strip():
            words.append(f"x: {ax.get_xlabel().strip()}")
        if ax.get_ylabel().strip():
            words.append(f"y: {ax.get_ylabel().strip()}")
        labels = [t.get_text() for legend in ([ax.get_legend()] if ax.get_legend() else []) for t in legend.get_texts()]
        if labels:
            words.append("series: " + ", ".join(labels))
        if words:
            parts.append("; ".join(words))
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    if labels:
        parts.append("legend: " + ", ".join(labels))
    kind = "Chart" if panels else "Figure"
    return (f"{kind}: " + ". ".join(parts)) if parts else "Figure without titles or labels: see the text around it."


def figure_png(fig: Figure) -> tuple[bytes, dict[str, Any]]:
    """The PNG of `fig` as a notebook shows it, with its alt text and display width as metadata."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight", metadata=METADATA["png"])
    data = buffer.getvalue()
    width = int.from_bytes(data[16:20], "big")  # the PNG header's width field
    return data, {"alt": alt_text(fig), "width": round(width * DISPLAY_DPI / PNG_DPI)}


def register_notebook_display() -> None:
    """In an IPython kernel, show figures with `figure_png` (alt text in the output metadata)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


@timed('figures')
def save_figure(fig: Figure, out_dir: Path | str, name: str, formats: tuple[str, ...] = ("png", "svg"),
                provenance: dict[str, Any] | None = None) -> list[Path]:
    """Write `out_dir/name.<fmt>` for each format atomically; a provenance file beside each when given."""
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        with matplotlib.rc_context(RC):
            fig.savefig(buffer, format=fmt, metadata=METADATA.get(fmt))
        path = atomic_write_bytes(Path(out_dir) / f"{name}.{fmt}", buffer.getvalue())
        if provenance is not None:
            write_provenance(path, **provenance)
        written.append(path)
    return written

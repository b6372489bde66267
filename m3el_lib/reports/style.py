"""One figure style for the project, and one `save_figure`.

Figures are built on bare `matplotlib.figure.Figure` objects with an Agg canvas, never through
pyplot, so the library neither needs a display nor changes a notebook's backend. `save_figure`
writes PNG and SVG atomically and reproducibly (no dates in the metadata), with a provenance file
beside each when asked.
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import matplotlib
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..data.provenance import write_provenance
from ..fsutil import atomic_write_bytes

PALETTE = "colorblind"
GOLD_COLOUR = "#0072B2"  # the mark of a gold answer (Okabe-Ito blue: dark in grey-scale too)
NEUTRAL_COLOUR = "0.55"  # frames and guides that carry no data
# One style for every figure: seaborn's whitegrid at notebook scale, text kept as text in SVG.
RC = {"svg.fonttype": "none", "svg.hashsalt": "m3el", "figure.dpi": 100, "savefig.dpi": 150,
      "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
      "legend.fontsize": 8, "legend.title_fontsize": 9}
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


@contextmanager
def style() -> Iterator[None]:
    """The project's plotting style, applied only inside the block (no global changes)."""
    with matplotlib.rc_context(RC), sns.axes_style("whitegrid"), sns.plotting_context("notebook", rc=RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure with its own Agg canvas and constrained layout (legends and labels get room)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, attached to this figure only
    return fig


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

"""Figures the book's own pages show (the notebooks draw theirs with `m3el_lib.reports.stats_figures`).

`draw_task_grid` draws the 9 tasks as our reading of the paper has them: every pairing of a
mention modality (rows) with an entity modality (columns), each of text (T), image (I) or both (TI).
`gallery_markdown` writes the "what an instance looks like" page around the figures that
`m3el_lib.reports.gallery` draws from the data.
"""
from __future__ import annotations

from pathlib import Path

from ..fsutil import atomic_write_bytes
from ..data.schema import MODALITIES, Modality, Task

MODALITY_WORDS = {Modality.T: "text", Modality.I: "image", Modality.TI: "text + image"}
# Cell colours by kind of task: same modality on both sides, the other single modality, or both.
ICON = 0.13  # icon size in grid units (a cell is 1 x 1)
KIND_COLOURS = {"same": "#d8e8f5", "cross": "#fbe3c8", "multi": "#dcefd9"}


def task_kind(task: Task) -> str:
    """'same' (T-T, I-I), 'cross' (T-I, I-T) or 'multi' (TI on either side)."""
    if Modality.TI in (task.mention, task.entity):
        return "multi"
    return "same" if task.mention == task.entity else "cross"


def _draw_text_icon(ax, x: float, y: float, size: float) -> None:
    for row in range(3):
        width = size * (1.0 if row < 2 else 0.6)
        ax.plot([x, x + width], [y - row * size * 0.3] * 2, color="#333333", lw=2.2, solid_capstyle="round")


def _draw_image_icon(ax, x: float, y: float, size: float) -> None:
    from matplotlib.patches import Circle, Polygon, Rectangle

    ax.add_patch(Rectangle((x, y - size * 0.75), size, size * 0.85, fill=False, ec="#333333", lw=1.6))
    ax.add_patch(Polygon([(x + size * 0.08, y - size * 0.68), (x + size * 0.42, y - size * 0.2),
                          (x + size * 0.62, y - size * 0.45), (x + size * 0.92, y - size * 0.68)],
                         closed=True, color="#4f7f4f"))
    ax.add_patch(Circle((x + size * 0.75, y - size * 0.05), size * 0.09, color="#e0a030"))


def _draw_modality(ax, modality: Modality, x: float, y: float, size: float) -> None:
    if modality in (Modality.T, Modality.TI):
        _draw_text_icon(ax, x, y, size)
        x += size * 1.3
    if modality in (Modality.I, Modality.TI):
        _draw_image_icon(ax, x, y + size * 0.05, size)


def draw_task_grid(path: Path | str, dpi: int = 110) -> Path:
    """Draw the 3 x 3 grid of tasks to a PNG at `path` (deterministic bytes) and return it."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(9.0, 5.6))
    ax.set_xlim(-1.05, 3.02)
    ax.set_ylim(-0.28, 3.3)
    ax.axis("off")
    for col, entity in enumerate(MODALITIES):
        ax.text(col + 0.5, 3.13, f"entity: {MODALITY_WORDS[entity]}", ha="center", va="center", fontsize=11, weight="bold")
    for row, mention in enumerate(MODALITIES):
        y0 = 2 - row
        ax.text(-0.06, y0 + 0.5, f"mention:\n{MODALITY_WORDS[mention]}", ha="right", va="center", fontsize=11, weight="bold")
        for col, entity in enumerate(MODALITIES):
            task = Task(mention, entity)
            ax.add_patch(FancyBboxPatch((col + 0.05, y0 + 0.05), 0.9, 0.9, boxstyle="round,pad=0,rounding_size=0.06",
                                        fc=KIND_COLOURS[task_kind(task)], ec="#777777", lw=1.0))
            ax.text(col + 0.5, y0 + 0.78, task.name, ha="center", va="center", fontsize=15, weight="bold")
            for side, modality, centre in (("mention", mention, col + 0.27), ("entity", entity, col + 0.73)):
                width = ICON * (2.3 if modality == Modality.TI else 1.0)
                _draw_modality(ax, modality, centre - width / 2, y0 + 0.5, ICON)
                ax.text(centre, y0 + 0.17, side, ha="center", va="center", fontsize=8, color="#555555")
            ax.text(col + 0.5, y0 + 0.42, "→", ha="center", va="center", fontsize=14)
    legend = [("same modality", "same"), ("cross-modal", "cross"), ("text + image on a side", "multi")]
    for index, (label, kind) in enumerate(legend):
        x = 0.05 + index * 1.0
        ax.add_patch(FancyBboxPatch((x, -0.22), 0.14, 0.12, boxstyle="round,pad=0,rounding_size=0.03",
                                    fc=KIND_COLOURS[kind], ec="#777777"))
        ax.text(x + 0.2, -0.16, label, va="center", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    # No software/date metadata, so the same figure gives the same bytes (the build stamp relies on it).
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def gallery_markdown(written: list, dataset_name: str, checksum: str, figure_dir: str = "figures/instances") -> str:
    """The body of the "what an instance looks like" page: one section per task drawn by
    `m3el_lib.reports.gallery.write_gallery` (`written`: its (example, file) pairs)."""
    from ..data.schema import TASKS
    from ..reports.gallery import MODALITY_WORDS, alt_text

    drawn = {example.task: (example, path) for example, path in written}
    lines = [f"The instances below were drawn from `{dataset_name}` (sha256 of its record files "
             f"`{checksum[:16]}`) by `m3el_lib.reports.gallery` when this book was built.", ""]
    missing = [task.name for task in TASKS if task not in drawn]
    if missing:
        lines += [f"No instance of this dataset qualifies for {', '.join(missing)} with every picture readable, "
                  "so those tasks have no figure here.", ""]
    for task in TASKS:
        if task not in drawn:
            continue
        example, path = drawn[task]
        inst = example.instance
        gold = inst.gold
        lines += [
            f"## {task.name}: a {MODALITY_WORDS[task.mention]} mention, candidates by {MODALITY_WORDS[task.entity]}", "",
            "```{figure} " + f"{figure_dir}/{Path(path).name}",
            f":name: fig-instance-{task.name}",
            f":alt: {alt_text(example)}",
            ":width: 100%", "",
            f"Instance `{inst.instance_id or inst.qid}` (topic *{inst.topic or 'none'}*, split *{inst.split or 'none'}*): "
            f"the gold is **{gold.name}** (`{gold.qid}`, framed and ticked) among {len(inst.candidates)} candidates"
            + (f", {example.hidden} of them not drawn" if example.hidden else "")
            + (". The names under the pictures are for the reader; the task sees the pictures alone."
               if task.entity == Modality.I else "."),
            "```", "",
        ]
    return "\n".join(lines)

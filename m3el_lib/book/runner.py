"""Build the book: execute the notebooks with papermill under a dependency-keyed cache, then
build the Jupyter Book (1.x) from the executed notebooks, strictly and without executing anything.

`make book [PROFILE=sample|full]` runs `m3el book --profile PROFILE`:

1. every `notebooks/*.py` (Jupytext py:percent) is paired with an executable `.ipynb`;
2. each is executed in file-name order (later notebooks read earlier results) with papermill and
   the profile's parameters, unless a cached execution with the same key exists. The key covers
   what the output depends on: the notebook's text, every `.py` of `m3el_lib`, the parameters,
   the data checksum, the pinned requirements and the key of the notebook before it (so a
   re-executed notebook re-executes the ones after it). Jupyter's own cache keys on code cells
   alone, which misses a change in the library;
3. a provenance note (profile, commit, data checksum, date, parameters) goes on every executed
   page; when the book is staged each chapter gets its plumbing folded by one mechanical rule
   (`fold_plumbing`), download links to its executed `.ipynb` and `.py` source, and the generated
   pages (the task grid, the instance gallery drawn from the data) are written; then the book is
   built with `jupyter-book build --all -W --keep-going` and execution off; an identical set of
   sources is not rebuilt;
4. the path of the HTML is printed.

A failing notebook stops everything with the notebook, the cell (number and line in the `.py`)
and the error. Everything lands under `$M3EL_HOME/book/<profile>/` (git-ignored), beside the
results the notebooks write, so wiping `$M3EL_HOME` also wipes the cache that refers to them.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import config
from ..data.datasets import data_identity, resolve_dataset
from ..data.io import DatasetError
from ..timing import STAGE_LOG_ENV
from ..fsutil import atomic_write_json, atomic_write_text, sha256_bytes, sha256_file, sha256_tree

KERNEL = "python3"
CHAPTERS = "chapters"  # folder of executed notebooks inside the staged book (the toc globs it)
PROVENANCE_TAG = "m3el-provenance"
CACHE_VERSION = 1
# Environment the kernels run in: the profile as default, no hub retries, no progress bars in
# the pages, deterministic hashing.
KERNEL_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0"}
Log = Callable[[str], None]


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook, the cell and the error."""


class BookBuildFailed(RuntimeError):
    """`jupyter-book build` reported warnings or errors; the message lists them."""


# ---------------------------------------------------------------------------- inputs and keys


def discover_notebooks(notebooks_dir: Path = config.NOTEBOOKS_DIR) -> list[Path]:
    """Every notebook source, in execution order (file name order: `01_...`, `02_...`)."""
    return sorted(p for p in Path(notebooks_dir).glob("*.py") if not p.name.startswith(("_", ".")))


def library_hash(lib_dir: Path = config.PACKAGE_DIR) -> str:
    """One checksum over every `.py` file of the library (what the notebooks import)."""
    lib_dir = Path(lib_dir)
    files = [p for p in lib_dir.rglob("*.py") if "__pycache__" not in p.parts]
    return sha256_tree(lib_dir, files)


def environment_hash(project_root: Path = config.PROJECT_ROOT) -> str:
    """The pinned requirements and the Python version: a new pin may change every output."""
    requirements = Path(project_root) / "requirements.txt"
    pins = requirements.read_bytes() if requirements.exists() else b""
    return sha256_bytes(pins + platform.python_version().encode())


def built_dataset_checksum(job: "BookJob") -> str | None:
    """Checksum of the record files of the dataset the notebooks built or read, if it is there."""
    with _environment({"M3EL_HOME": str(job.home)}):
        try:
            return resolve_dataset(profile=job.profile, build=False).checksum()
        except (DatasetError, OSError):
            return None


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class NotebookInputs:
    """Everything one notebook's execution depends on; `key` hashes it."""

    text: str
    library: str
    parameters: dict[str, Any]
    data: str
    environment: str
    upstream: str  # key of the notebook executed before this one ("" for the first)

    def as_dict(self) -> dict[str, Any]:
        return {"version": CACHE_VERSION, "text": self.text, "library": self.library, "parameters": self.parameters,
                "data": self.data, "environment": self.environment, "upstream": self.upstream}

    @property
    def key(self) -> str:
        return _digest(self.as_dict())


def changed_inputs(old: dict[str, Any] | None, new: NotebookInputs) -> list[str]:
    """Which inputs differ from the cached ones (for the log: why a notebook runs again)."""
    if not old:
        return ["never executed"]
    labels = {"text": "its text", "library": "m3el_lib", "parameters": "parameters", "data": "data",
              "environment": "requirements/python", "upstream": "an earlier notebook", "version": "cache format"}
    current = new.as_dict()
    return [labels[name] for name in current if old.get(name) != current[name]] or ["output missing"]


# ---------------------------------------------------------------------------- the job


@dataclass
class BookJob:
    """One `make book`: which notebooks, which profile, where things are and go."""

    profile: str
    notebooks: list[Path]
    home: Path  # the M3EL_HOME the notebooks read and write; the cache lives in it too
    book_dir: Path = config.BOOK_DIR
    lib_dir: Path = config.PACKAGE_DIR
    project_root: Path = config.PROJECT_ROOT
    parameters: dict[str, Any] = field(default_factory=dict)  # extra papermill parameters
    data: tuple[str, str] | None = None  # (checksum, description); computed when None
    gallery_data: Path | None = None  # the dataset the instance gallery is drawn from; the profile's when None

    @property
    def work_dir(self) -> Path:
        return Path(self.home) / "book" / self.profile

    @property
    def paired_dir(self) -> Path:
        return self.work_dir / "paired"

    @property
    def executed_dir(self) -> Path:
        return self.work_dir / "executed"

    @property
    def source_dir(self) -> Path:
        return self.work_dir / "source"

    @property
    def html_dir(self) -> Path:
        return self.work_dir / "_build" / "html"

    @property
    def cache_file(self) -> Path:
        return self.executed_dir / "cache.json"

    def notebook_parameters(self) -> dict[str, Any]:
        return {"profile": self.profile, **self.parameters}

    def data_info(self) -> tuple[str, str]:
        if self.data is None:
            self.data = data_identity(self.profile)
        return self.data


def default_job(profile: str | None = None, parameters: dict[str, Any] | None = None, home: Path | None = None) -> BookJob:
    """The project's notebooks under `M3EL_HOME` (or `home`)."""
    return BookJob(profile=config.get_profile(profile).name, notebooks=discover_notebooks(),
                   home=Path(home) if home else config.home(), parameters=dict(parameters or {}))


@dataclass(frozen=True)
class NotebookRun:
    """What happened to one notebook in this build."""

    name: str
    source: Path
    executed: Path
    status: str  # "executed" or "cached"
    reasons: tuple[str, ...]
    seconds: float


# ---------------------------------------------------------------------------- execution


def pair_notebook(source: Path, paired_dir: Path) -> Path:
    """Write the executable `.ipynb` twin of a py:percent notebook (with a kernel named)."""
    import jupytext
    import nbformat

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    notebook.metadata.setdefault("language_info", {"name": "python"})
    target = Path(paired_dir) / f"{source.stem}.ipynb"
    atomic_write_text(target, nbformat.writes(notebook))
    return target


@contextlib.contextmanager
def _environment(overrides: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernels started inside the block, then restore them."""
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _source_line(source: Path, cell_source: str) -> int | None:
    """Line in the `.py` where a cell's first non-empty line is, to point the reader at it."""
    first = next((line for line in cell_source.splitlines() if line.strip()), "")
    if not first:
        return None
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if line.rstrip() == first.rstrip():
            return number
    return None


def _leading_blank_lines(text: str) -> int:
    lines = text.splitlines()
    return next((i for i, line in enumerate(lines) if line.strip()), len(lines))


def _failure_message(source: Path, failed_copy: Path, err: Any) -> str:
    from papermill.exceptions import strip_color

    traceback = strip_color("\n".join(err.traceback or [])).strip().splitlines()
    line = _source_line(source, err.source or "")
    # IPython names the failing line within the cell ("Cell In[4], line 2"): point at it in the .py.
    within = next((int(m.group(1)) for t in traceback if (m := re.search(r"Cell In\[\d+\], line (\d+)", t))), None)
    if line and within:
        line += within - 1 - _leading_blank_lines(err.source or "")
    where = f"{source}:{line}" if line else str(source)
    excerpt = "\n".join("    " + text for text in (err.source or "").strip().splitlines()[:12])
    return (
        f"notebook {source.name} failed in cell {err.cell_index} (In [{err.exec_count}]) at {where}:\n"
        f"{excerpt}\n"
        f"{err.ename}: {err.evalue}\n"
        + "\n".join("  " + text for text in traceback[-15:])
        + f"\nthe executed notebook up to the failure: {failed_copy}"
    )


def provenance_markdown(job: BookJob, inputs: NotebookInputs, seconds: float) -> str:
    """The note at the top of every executed page: profile, commit, data checksum, date."""
    from ..data.provenance import git_commit

    profile = config.get_profile(job.profile)
    checksum, described = job.data_info()
    commit = git_commit()
    commit_text = f"`{commit.removesuffix('+dirty')[:12]}`" + (" with uncommitted changes" if commit.endswith("+dirty") else "")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parameters = ", ".join(f"`{name}={value!r}`" for name, value in inputs.parameters.items())
    dataset = built_dataset_checksum(job) if profile.name == "sample" else None
    return (
        "```{admonition} Provenance of this page\n"
        ":class: note\n"
        f"Executed by `make book` on {when} at commit {commit_text}, in {seconds:.0f} s.\n\n"
        f"- **profile**: `{profile.name}`: {profile.description}\n"
        f"- **data checksum**: `{checksum[:16]}` (sha256 of {described})\n"
        + (f"- **dataset**: `{dataset[:16]}` (sha256 of the record files of `{profile.dataset}`)\n" if dataset else "")
        + f"- **parameters**: {parameters}\n"
        f"- **m3el_lib source**: `{inputs.library[:16]}` (sha256 of its `.py` files)\n"
        "```\n"
    )


def insert_provenance(notebook: Any, markdown: str) -> None:
    """Put the provenance note right after the notebook's title cell (or first, without one)."""
    import nbformat

    cell = nbformat.v4.new_markdown_cell(markdown, metadata={"tags": [PROVENANCE_TAG]})
    cells = notebook.cells
    cells[:] = [c for c in cells if PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.lstrip().startswith("# ")), None)
    cells.insert(0 if title is None else title + 1, cell)


def stderr_summary(notebook: Any) -> list[str]:
    """One line per cell that wrote to stderr (hidden in the pages; shown in the build log)."""
    lines = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                first = next((t for t in output.get("text", "").splitlines() if t.strip()), "")
                lines.append(f"cell {index}: {first[:160]}")
    return lines


def check_outputs(source: Path, notebook: Any) -> None:
    """Refuse an executed notebook that shows an error (e.g. a cell tagged raises-exception)."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            if output.get("output_type") == "error" or "Traceback (most recent call last)" in text:
                name = output.get("ename", "a traceback")
                raise NotebookFailed(f"notebook {source.name}: cell {index} shows an error output ({name}); "
                                     "the book shows no errors: catch it and print what the reader should see")


def stage_log_path(job: BookJob, source: Path) -> Path:
    """Where a notebook's kernel writes its seconds per stage (`m3el_lib.timing`)."""
    return job.work_dir / "profile" / f"{source.stem}.json"


def stage_profile(job: BookJob) -> dict[str, dict[str, dict[str, float]]]:
    """{notebook: {stage: {"seconds", "calls"}}} from the last execution of each notebook."""
    found = {}
    for source in job.notebooks:
        path = stage_log_path(job, source)
        if path.is_file():
            found[source.stem] = json.loads(path.read_text(encoding="utf-8"))
    return found


def execute_notebook(job: BookJob, source: Path, inputs: NotebookInputs, log: Log) -> tuple[Path, float]:
    """Execute one notebook with papermill; return the executed notebook and its seconds."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    paired = pair_notebook(source, job.paired_dir)
    running = job.executed_dir / f"{source.stem}.running.ipynb"
    failed = job.executed_dir / f"{source.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    stage_log_path(job, source).unlink(missing_ok=True)  # a failed run leaves no stale profile
    running.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    env = {**KERNEL_ENV, "M3EL_PROFILE": job.profile, "M3EL_HOME": str(job.home),
           STAGE_LOG_ENV: str(stage_log_path(job, source))}
    try:
        with _environment(env):
            papermill.execute_notebook(
                str(paired), str(running), parameters=inputs.parameters, kernel_name=KERNEL,
                progress_bar=False, cwd=str(source.parent),
            )
    except PapermillExecutionError as err:
        if running.exists():
            running.replace(failed)
        raise NotebookFailed(_failure_message(source, failed, err)) from None
    seconds = time.perf_counter() - start
    notebook = nbformat.read(running, as_version=4)
    try:
        check_outputs(source, notebook)
    except NotebookFailed:
        running.replace(failed)
        raise
    for line in stderr_summary(notebook):
        log(f"    stderr (hidden in the book) {line}")
    insert_provenance(notebook, provenance_markdown(job, inputs, seconds))
    target = job.executed_dir / f"{source.stem}.ipynb"
    atomic_write_text(target, nbformat.writes(notebook))
    running.unlink(missing_ok=True)
    return target, seconds


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def execute_all(job: BookJob, force: bool = False, log: Log = print) -> list[NotebookRun]:
    """Execute the notebooks in order, skipping those whose inputs (and output) are unchanged."""
    cache = _load_cache(job.cache_file)
    library = library_hash(job.lib_dir)
    environment = environment_hash(job.project_root)
    data, _ = job.data_info()
    upstream = ""
    runs: list[NotebookRun] = []
    for source in job.notebooks:
        inputs = NotebookInputs(
            text=sha256_file(source), library=library, parameters=job.notebook_parameters(), data=data,
            environment=environment, upstream=upstream,
        )
        upstream = inputs.key
        target = job.executed_dir / f"{source.stem}.ipynb"
        entry = cache.get(source.stem)
        if not force and entry and entry.get("key") == inputs.key and target.exists():
            log(f"  {source.name}: unchanged, not executed (cached {entry.get('executed', '?')})")
            runs.append(NotebookRun(source.stem, source, target, "cached", (), 0.0))
            continue
        reasons = ("forced",) if force else tuple(changed_inputs(entry and entry.get("inputs"), inputs))
        log(f"  {source.name}: executing ({', '.join(reasons)} changed)" if entry else f"  {source.name}: executing")
        executed, seconds = execute_notebook(job, source, inputs, log)
        log(f"  {source.name}: done in {seconds:.0f} s")
        cache[source.stem] = {"key": inputs.key, "inputs": inputs.as_dict(), "seconds": round(seconds, 1),
                              "executed": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_json(job.cache_file, cache)
        runs.append(NotebookRun(source.stem, source, executed, "executed", reasons, seconds))
    return runs


# ---------------------------------------------------------------------------- the book


# ---------------------------------------------------------------------------- chapter pages

# Tags MyST-NB understands: hide-input folds a cell's code under a "Show code cell source" toggle
# (its outputs stay visible); remove-cell drops the cell from the page.
FOLDING_TAGS = {"hide-input", "hide-output", "hide-cell", "remove-input", "remove-output", "remove-cell"}
IMPORT_LINE = re.compile(r"^(import\s|from\s+\S+\s+import\s)")
DOWNLOADS = "downloads"  # folder of the staged book with each chapter's notebook files


def _tags(cell: Any) -> list[str]:
    return cell.setdefault("metadata", {}).setdefault("tags", [])


def _imports(source: str) -> bool:
    return any(IMPORT_LINE.match(line) for line in source.splitlines())


GLUE_PREFIX = "application/papermill.record/"  # MyST-NB `glue(..., display=False)` stores values so


def is_glue_record(output: Any) -> bool:
    """An output that only stores a value for MyST-NB's glue roles (the page never shows it)."""
    data = output.get("data", {})
    return output.get("output_type") == "display_data" and bool(data) and all(k.startswith(GLUE_PREFIX) for k in data)


def _shows_prose_only(cell: Any) -> bool:
    """A code cell whose every output is Markdown it displayed (prose assembled in code) or a
    value glued into the prose (computed for the text around it)."""
    outputs = cell.get("outputs", [])
    return bool(outputs) and all(is_glue_record(o) or (o.get("output_type") == "display_data"
                                                       and "text/markdown" in o.get("data", {})) for o in outputs)


def fold_plumbing(notebook: Any) -> list[tuple[int, str]]:
    """Tag the cells a reader need not read first, so the story comes first; (cell, tag) added.

    The rule is mechanical, so notebooks need no per-cell tags: papermill's injected-parameters
    cell is removed (the provenance note lists the parameters that ran); the default `parameters`
    cell, the first code cell that imports, and cells whose only outputs are Markdown they built or
    values glued into the prose get `hide-input` (the code folds, the reader can unfold it, every
    output stays). A cell that
    already has a hide-/remove- tag is left as its author tagged it.
    """
    added = []
    imports_seen = False
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue
        tags = _tags(cell)
        first_import = not imports_seen and "parameters" not in tags and _imports(cell.get("source", ""))
        imports_seen = imports_seen or first_import
        if FOLDING_TAGS & set(tags):
            continue
        if "injected-parameters" in tags:
            tag = "remove-cell"
        elif "parameters" in tags or first_import or _shows_prose_only(cell):
            tag = "hide-input"
        else:
            continue
        tags.append(tag)
        added.append((index, tag))
    return added


IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")


def _first_sentence(markdown: str) -> str:
    lines = [line.strip() for line in markdown.splitlines() if line.strip()]
    prose = [line for line in lines if not line.startswith("#")]
    text = " ".join(prose) if prose else " ".join(line.lstrip("#").strip() for line in lines)
    # MyST roles: a glued value is not known here ("…"); other roles keep their visible text.
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", "…", text)
    text = re.sub(r"\{[\w:-]+\}`([^`<]*?)\s*(?:<[^`]*>)?`", r"\1", text)
    text = re.sub(r"[*`]", "", text)
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text)[:300]


def set_figure_alt_texts(notebook: Any) -> int:
    """Give every cell that shows a picture the alt text MyST-NB puts on its `<img>`s.

    The text is the one the library put in the output's metadata (`reports.style.figure_png`);
    for a picture without one, the first sentence of the Markdown cell before it (the notebooks
    say what a figure shows before showing it). A cell whose author set an alt keeps it.
    Returns how many cells got one.
    """
    set_cells = 0
    last_markdown = ""
    for cell in notebook.cells:
        if cell.get("cell_type") == "markdown":
            last_markdown = cell.get("source", "") if PROVENANCE_TAG not in cell.get("metadata", {}).get("tags", []) else last_markdown
            continue
        images = [o for o in cell.get("outputs", []) if o.get("output_type") in ("display_data", "execute_result")
                  and any(kind in o.get("data", {}) for kind in IMAGE_TYPES)]
        options = cell.setdefault("metadata", {}).setdefault("mystnb", {}).setdefault("image", {})
        if not images or options.get("alt"):
            if not options:
                cell.metadata["mystnb"].pop("image")
            if not cell.metadata["mystnb"]:
                cell.metadata.pop("mystnb")
            continue
        fallback = f"Figure: {_first_sentence(last_markdown)}" if last_markdown.strip() else "Figure (described in the text)."
        texts = []
        for output in images:
            kind = next(kind for kind in IMAGE_TYPES if kind in output["data"])
            alt = output.get("metadata", {}).get(kind, {}).get("alt") or fallback
            if alt not in texts:
                texts.append(alt)
        options["alt"] = " | ".join(texts)
        set_cells += 1
    return set_cells


def add_download_links(notebook: Any, stem: str) -> None:
    """Offer the chapter's executed notebook and its py:percent source at the end of its
    provenance note (`{download}` copies them into the built book: offline)."""
    links = (f"- **download**: {{download}}`the executed notebook ({stem}.ipynb) <../{DOWNLOADS}/{stem}.ipynb>`, "
             f"{{download}}`its source ({stem}.py, Jupytext py:percent) <../{DOWNLOADS}/{stem}.py>`\n")
    for cell in notebook.cells:
        if PROVENANCE_TAG in cell.get("metadata", {}).get("tags", []):
            body = cell.source.rstrip()
            if body.endswith("```"):
                cell.source = body[:-3].rstrip("\n") + "\n" + links + "```\n"
                return
    raise ValueError(f"chapter {stem}: no provenance note to add the download links to")


def stage_chapter(run: NotebookRun, chapters: Path, downloads: Path) -> Path:
    """The chapter page: the executed notebook with its plumbing folded and its download links;
    the notebook and its source, as they are, beside it for download."""
    import nbformat

    shutil.copyfile(run.executed, downloads / run.executed.name)
    shutil.copyfile(run.source, downloads / f"{run.name}.py")
    notebook = nbformat.read(run.executed, as_version=4)
    fold_plumbing(notebook)
    set_figure_alt_texts(notebook)
    add_download_links(notebook, run.name)
    return atomic_write_text(chapters / run.executed.name, nbformat.writes(notebook))


def stage_book(job: BookJob, runs: list[NotebookRun], log: Log = print) -> Path:
    """Copy the book's own pages, the executed notebooks and the generated figures into one
    source folder (so `book/` holds only committed files and each profile its own build)."""
    from .figures import draw_task_grid

    source = job.source_dir
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(job.book_dir, source, ignore=shutil.ignore_patterns("_build", "__pycache__", ".ipynb_checkpoints"))
    chapters, downloads = source / CHAPTERS, source / DOWNLOADS
    chapters.mkdir(parents=True, exist_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    for run in runs:
        stage_chapter(run, chapters, downloads)
    draw_task_grid(source / "figures" / "nine_tasks.png")
    atomic_write_text(source / "generated" / "snapshot_sources.md", snapshot_sources_markdown(config.SNAPSHOT_DIR))
    atomic_write_text(source / "generated" / "instances.md", instance_gallery_markdown(job, source, log))
    return source


def instance_gallery_markdown(job: BookJob, source: Path, log: Log = print) -> str:
    """Draw one instance per task from the profile's dataset (as the notebooks left it) into
    `figures/instances/` of the staged book; the page body that shows them."""
    from ..reports.gallery import write_gallery
    from .figures import gallery_markdown

    with _environment({"M3EL_HOME": str(job.home)}):
        try:
            ref = resolve_dataset(job.gallery_data, profile=job.profile, build=False)
            dataset = ref.load()
        except (DatasetError, OSError) as err:
            log(f"  no instance gallery: {err}")
            return (f"*No instance gallery in this build: the `{job.profile}` profile's dataset could not be "
                    f"read ({err}).*\n")
        written = write_gallery(dataset, source / "figures" / "instances")
    log(f"  drew {len(written)} instance(s) of {ref.name} for the gallery")
    return gallery_markdown(written, ref.name, ref.checksum())


def snapshot_sources_markdown(snapshot_dir: Path) -> str:
    """The data card's table of snapshot inputs, read from `snapshot.json` (never retyped)."""
    manifest = Path(snapshot_dir) / "snapshot.json"
    if not manifest.exists():
        return f"*The snapshot manifest {manifest.name} is missing from this checkout.*\n"
    inputs = json.loads(manifest.read_text(encoding="utf-8")).get("inputs", {})
    rows = ["| source | version | sha256 of the file read |", "| --- | --- | --- |"]
    for name, item in sorted(inputs.items()):
        digest = item.get("sha256", "")
        rows.append(f"| {name} | `{item.get('version', '')}` | {'`' + digest[:16] + '…`' if digest else 'n/a'} |")
    licences = sorted(p.name for p in (Path(snapshot_dir) / "LICENSES").glob("*") if p.is_file())
    listed = ", ".join(f"`{name}`" for name in licences) or "none found"
    return "\n".join(rows) + f"\n\nLicence and attribution files in `data/snapshot/LICENSES/`: {listed}.\n"


def _jupyter_book() -> list[str]:
    candidate = Path(sys.executable).with_name("jupyter-book")
    return [str(candidate)] if candidate.exists() else ["jupyter-book"]


def _build_stamp(source: Path) -> str:
    from importlib import metadata

    return sha256_bytes((sha256_tree(source) + metadata.version("jupyter-book")).encode())


def build_book(job: BookJob, source: Path, log: Log = print) -> bool:
    """Build the HTML strictly (all pages, warnings are errors); False when it was up to date."""
    stamp_file = job.work_dir / "build-stamp.json"
    stamp = _build_stamp(source)
    index = job.html_dir / "index.html"
    if index.exists() and _load_cache(stamp_file).get("sources") == stamp:
        log("  the book's sources are unchanged since the last strict build: not rebuilt")
        return False
    stamp_file.unlink(missing_ok=True)
    shutil.rmtree(job.work_dir / "_build", ignore_errors=True)
    command = [*_jupyter_book(), "build", "--all", "-W", "--keep-going", "--path-output", str(job.work_dir), str(source)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=job.project_root)
    output = result.stdout + result.stderr
    if result.returncode != 0 or not index.exists():
        problems = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line]
        raise BookBuildFailed("jupyter-book build failed (warnings are errors):\n" + "\n".join(problems[-40:] or output.splitlines()[-40:]))
    atomic_write_json(stamp_file, {"sources": stamp})
    log(f"  built the HTML in {time.perf_counter() - started:.0f} s")
    return True


@contextlib.contextmanager
def _locked(work_dir: Path) -> Iterator[None]:
    """One build per profile at a time (make book and make test share the cache)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class BookResult:
    runs: list[NotebookRun]
    html_dir: Path
    rebuilt: bool

    @property
    def index(self) -> Path:
        return self.html_dir / "index.html"

    def chapter_pages(self) -> list[Path]:
        return [self.html_dir / CHAPTERS / f"{run.name}.html" for run in self.runs]


def make_book(job: BookJob | None = None, force: bool = False, log: Log = print) -> BookResult:
    """Execute what changed, build the book, say where it is."""
    job = job or default_job()
    with _locked(job.work_dir):
        log(f"book ({job.profile} profile): {len(job.notebooks)} notebook(s) in "
            f"{job.notebooks[0].parent if job.notebooks else 'notebooks/ (none found)'}")
        runs = execute_all(job, force=force, log=log)
        source = stage_book(job, runs, log=log)
        rebuilt = build_book(job, source, log=log)
    result = BookResult(runs, job.html_dir, rebuilt)
    log(f"The book is at {result.index}\n  open file://{result.index}")
    return result


# ---------------------------------------------------------------------------- command line


def parse_parameter(text: str) -> tuple[str, Any]:
    """A papermill parameter `NAME=VALUE` (`config.parse_key_value`); NAME must be an identifier."""
    try:
        name, value = config.parse_key_value(text)
    except ValueError:
        name, value = "", None
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=config.PROFILE_NAMES, default=None)
    parser.add_argument("--force", action="store_true", help="execute every notebook even if cached")
    parser.add_argument("-p", "--param", type=parse_parameter, action="append", default=[],
                        help="extra papermill parameter NAME=VALUE for every notebook (part of the cache key)")


def run(args: argparse.Namespace) -> int:
    """`m3el book`: execute what changed, build the book, print where it is."""
    job = default_job(args.profile, dict(args.param))
    try:
        make_book(job, force=args.force)
    except (NotebookFailed, BookBuildFailed, FileNotFoundError) as err:
        print(f"\nbook build stopped: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="m3el book", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))

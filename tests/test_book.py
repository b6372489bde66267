"""Tests of the book runner (m3el_lib.book.runner) on tiny notebooks made here, not the project's.

The first group is pure Python; the tests marked `notebooks` start real kernels (a second or two
per execution) and one runs a real, strict `jupyter-book build` of the project's book pages.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from m3el_lib.book import runner as book
from m3el_lib.book.figures import draw_task_grid, task_kind
from m3el_lib.data.schema import TASKS

NOTEBOOK = '''# %% [markdown]
# # {title}
# A tiny notebook for the runner's tests.

# %% tags=["parameters"]
profile = "sample"
factor = 2

# %%
print("profile", profile, "value", {value} * factor)
'''

FAILING = '''# %% [markdown]
# # Broken

# %% tags=["parameters"]
profile = "sample"

# %%
numbers = [1, 2, 3]

# %%
total = sum(numbers)
raise ValueError(f"deliberate failure after {total}")
'''


def write_notebook(folder: Path, name: str, title: str = "Tiny", value: int = 1) -> Path:
    path = folder / name
    path.write_text(NOTEBOOK.format(title=title, value=value), encoding="utf-8")
    return path


def make_job(tmp_path: Path, notebooks: list[Path], **kwargs) -> book.BookJob:
    lib = tmp_path / "lib"
    if not lib.exists():
        lib.mkdir()
        (lib / "module.py").write_text("VALUE = 1\n")
    kwargs.setdefault("lib_dir", lib)
    kwargs.setdefault("data", ("data-checksum-1", "test data"))
    return book.BookJob(profile="sample", notebooks=notebooks, home=tmp_path / "home", **kwargs)


def statuses(runs: list[book.NotebookRun]) -> dict[str, str]:
    return {run.name: run.status for run in runs}


# ---------------------------------------------------------------------------- pure functions


def test_discover_notebooks_in_file_name_order(tmp_path):
    for name in ("02_b.py", "01_a.py", "_helper.py", "10_c.py", "notes.txt"):
        (tmp_path / name).write_text("# %%\n")
    assert [p.name for p in book.discover_notebooks(tmp_path)] == ["01_a.py", "02_b.py", "10_c.py"]


def test_library_hash_follows_python_sources_only(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    before = book.library_hash(tmp_path)
    (tmp_path / "notes.md").write_text("not code")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert book.library_hash(tmp_path) == before
    (tmp_path / "pkg" / "a.py").write_text("A = 2\n")
    assert book.library_hash(tmp_path) != before


def test_key_changes_with_every_input_and_names_it():
    base = book.NotebookInputs(text="t", library="l", parameters={"profile": "sample"}, data="d", environment="e", upstream="")
    variants = {
        "its text": {"text": "t2"}, "m3el_lib": {"library": "l2"}, "parameters": {"parameters": {"profile": "full"}},
        "data": {"data": "d2"}, "requirements/python": {"environment": "e2"}, "an earlier notebook": {"upstream": "k"},
    }
    for label, change in variants.items():
        changed = book.NotebookInputs(**{**base.__dict__, **change})
        assert changed.key != base.key
        assert book.changed_inputs(base.as_dict(), changed) == [label]
    assert book.changed_inputs(None, base) == ["never executed"]
    assert book.changed_inputs(base.as_dict(), base) == ["output missing"]


def test_parse_parameter_reads_json_values_else_strings():
    assert book.parse_parameter("epochs=3") == ("epochs", 3)
    assert book.parse_parameter("topics=[\"a\", \"b\"]") == ("topics", ["a", "b"])
    assert book.parse_parameter("dataset_path=/data/m3el") == ("dataset_path", "/data/m3el")
    # what a notebook's parameter cell says reads as it does there: a string "False" would be true
    assert book.parse_parameter("cold_start=False") == ("cold_start", False)
    assert book.parse_parameter("retrain=false") == ("retrain", False)
    assert book.parse_parameter("checkpoint=None") == ("checkpoint", None)
    assert book.parse_parameter("name=__import__('os')") == ("name", "__import__('os')")
    with pytest.raises(Exception, match="NAME=VALUE"):
        book.parse_parameter("no-equals-sign")


def test_provenance_goes_after_the_title_and_replaces_an_old_one():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("# Title\ntext"), nbformat.v4.new_code_cell("y")])
    book.insert_provenance(notebook, "first note")
    book.insert_provenance(notebook, "second note")
    sources = [cell.source for cell in notebook.cells]
    assert sources == ["x = 1", "# Title\ntext", "second note", "y"]
    assert book.PROVENANCE_TAG in notebook.cells[2].metadata["tags"]


def test_plumbing_is_folded_by_rule_and_every_output_kept():
    v4 = nbformat.v4
    markdown_output = v4.new_output("display_data", data={"text/markdown": "The value is **3**."})
    figure_output = v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    table_output = v4.new_output("display_data", data={"text/html": "<table></table>", "text/plain": "table"})
    glued_markdown = v4.new_output("display_data", metadata={"scrapbook": {"name": "remarks"}}, data={
        "application/papermill.record/text/markdown": "- a remark", "application/papermill.record/text/plain": "<Markdown>"})
    notebook = v4.new_notebook(cells=[
        v4.new_markdown_cell("# Title"),
        v4.new_code_cell("profile = 'sample'", metadata={"tags": ["parameters"]}),
        v4.new_code_cell("# Parameters\nprofile = 'full'\n", metadata={"tags": ["injected-parameters"]}),
        v4.new_code_cell("import json\nfrom pathlib import Path\nprint('ready')",
                         outputs=[v4.new_output("stream", name="stdout", text="ready\n")]),
        v4.new_code_cell("display(Markdown(f'The value is **{x}**.'))", outputs=[markdown_output]),
        v4.new_code_cell("import numpy as np\nfig = plot(np.arange(3))", outputs=[figure_output]),
        v4.new_code_cell("table", outputs=[markdown_output, figure_output]),
        v4.new_code_cell("secret = 1", metadata={"tags": ["remove-input"]}),
        v4.new_code_cell("glue('n', 3, display=False)", outputs=[v4.new_output(
            "display_data", data={"application/papermill.record/text/plain": "3"}, metadata={"scrapbook": {"name": "n"}})]),
        v4.new_code_cell("glue('remarks', Markdown(remarks(table)), display=False)", outputs=[glued_markdown]),
        v4.new_code_cell("show('overview')\nglue('share', 0.5, display=False)", outputs=[table_output, glued_markdown]),
    ])
    before = [len(cell.get("outputs", [])) for cell in notebook.cells]
    added = book.fold_plumbing(notebook)
    assert added == [(1, "hide-input"), (2, "remove-cell"), (3, "hide-input"), (4, "hide-input"), (8, "hide-input"),
                     (9, "hide-input")]
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    assert tags[5] == [] and tags[6] == []  # a later import cell and a figure stay unfolded
    assert tags[10] == []  # a table stays unfolded even when its cell also glues values
    assert tags[7] == ["remove-input"]  # the author's own tag is left alone
    assert [len(cell.get("outputs", [])) for cell in notebook.cells] == before
    assert book.fold_plumbing(notebook) == []  # idempotent


def test_download_links_go_into_the_provenance_note():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")])
    book.insert_provenance(notebook, "```{admonition} Provenance of this page\n:class: note\n- **profile**: `sample`\n```\n")
    book.add_download_links(notebook, "01_intro")
    note = notebook.cells[1].source
    assert note.rstrip().endswith("```") and note.count("```") == 2
    assert "{download}`the executed notebook (01_intro.ipynb) <../downloads/01_intro.ipynb>`" in note
    assert "<../downloads/01_intro.py>`" in note
    with pytest.raises(ValueError, match="no provenance note"):
        book.add_download_links(nbformat.v4.new_notebook(cells=[]), "02_x")


def test_every_picture_output_gets_an_alt_text():
    v4 = nbformat.v4
    png = {"image/png": "iVBORw0KGgo="}
    with_alt = v4.new_output("display_data", data=png, metadata={"image/png": {"alt": "Chart: Acc@1 per task", "width": 700}})
    notebook = v4.new_notebook(cells=[
        v4.new_markdown_cell("## Pictures\nThe mention pictures of three entities, side by side. Then more."),
        v4.new_code_cell("show()", outputs=[v4.new_output("display_data", data=png)]),
        v4.new_code_cell("plot()", outputs=[with_alt, v4.new_output("display_data", data=png)]),
        v4.new_code_cell("print(1)", outputs=[v4.new_output("stream", name="stdout", text="1")]),
        v4.new_code_cell("mine()", outputs=[v4.new_output("display_data", data=png)],
                         metadata={"mystnb": {"image": {"alt": "the author's words"}}}),
    ])
    assert book.set_figure_alt_texts(notebook) == 2
    alts = [cell.metadata.get("mystnb", {}).get("image", {}).get("alt") for cell in notebook.cells]
    fallback = "Figure: The mention pictures of three entities, side by side."
    assert alts == [None, fallback, f"Chart: Acc@1 per task | {fallback}", None, "the author's words"]
    assert book._first_sentence("Took **{glue:text}`secs:.0f` s**, see {ref}`the grid <fig-grid>`. More.") == \
        "Took … s, see the grid."


def test_an_error_output_is_refused_even_without_an_exception():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1/0", outputs=[
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])])])
    with pytest.raises(book.NotebookFailed, match="cell 0 shows an error output"):
        book.check_outputs(Path("nb.py"), notebook)


def test_snapshot_sources_table_comes_from_the_manifest(tmp_path):
    (tmp_path / "LICENSES").mkdir()
    (tmp_path / "LICENSES" / "pkg-MIT.txt").write_text("MIT")
    (tmp_path / "snapshot.json").write_text(json.dumps({"inputs": {"pkg": {"version": "1.2", "file": "pkg.whl", "sha256": "ab" * 32}}}))
    table = book.snapshot_sources_markdown(tmp_path)
    assert "| pkg | `1.2` | `abababababababab…` |" in table
    assert "`pkg-MIT.txt`" in table
    assert "missing" in book.snapshot_sources_markdown(tmp_path / "nowhere")


def test_task_grid_is_deterministic_and_covers_every_task(tmp_path):
    first = draw_task_grid(tmp_path / "a.png").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and len(first) > 10_000
    assert draw_task_grid(tmp_path / "b.png").read_bytes() == first
    kinds = [task_kind(task) for task in TASKS]
    assert kinds.count("same") == 2 and kinds.count("cross") == 2 and kinds.count("multi") == 5


def test_thebe_scripts_are_recognised_for_removal():
    import importlib.util

    spec = importlib.util.spec_from_file_location("offline_book", book.config.BOOK_DIR / "_ext" / "offline_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Script(str):
        def __new__(cls, filename, body=""):
            made = super().__new__(cls, filename or "")
            made.filename, made.attributes = filename, {"body": body} if body else {}
            return made

    scripts = [Script("_static/doctools.js"), Script("sphinx-thebe.js"), Script(None, 'const THEBE_JS_URL = "x"')]
    context = {"script_files": scripts}
    module.drop_thebe(None, "page", "page.html", context, None)
    assert [s.filename for s in context["script_files"]] == ["_static/doctools.js"]


# ---------------------------------------------------------------------------- real kernels


@pytest.mark.notebooks
def test_cache_skips_unchanged_and_reruns_what_changed(tmp_path):
    first = write_notebook(tmp_path, "01_first.py", value=1)
    second = write_notebook(tmp_path, "02_second.py", title="Second", value=5)
    job = make_job(tmp_path, [first, second])
    log: list[str] = []

    assert statuses(book.execute_all(job, log=log.append)) == {"01_first": "executed", "02_second": "executed"}
    executed = nbformat.read(job.executed_dir / "02_second.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "profile sample value 10" in outputs
    assert any(book.PROVENANCE_TAG in c.metadata.get("tags", []) for c in executed.cells)

    # Nothing changed: nothing runs.
    assert statuses(book.execute_all(job, log=log.append)) == {"01_first": "cached", "02_second": "cached"}

    # The second notebook's text: only it runs again.
    write_notebook(tmp_path, "02_second.py", title="Second", value=6)
    runs = book.execute_all(job, log=log.append)
    assert statuses(runs) == {"01_first": "cached", "02_second": "executed"}
    assert runs[1].reasons == ("its text",)

    # The first notebook's text: both run (the second reads what the first wrote).
    write_notebook(tmp_path, "01_first.py", value=2)
    runs = book.execute_all(job, log=log.append)
    assert statuses(runs) == {"01_first": "executed", "02_second": "executed"}
    assert runs[1].reasons == ("an earlier notebook",)

    # The library, the data, the parameters: each makes everything run again.
    (job.lib_dir / "module.py").write_text("VALUE = 2\n")
    assert {r.reasons for r in book.execute_all(job, log=log.append)} == {("m3el_lib", "an earlier notebook"), ("m3el_lib",)}
    job.data = ("data-checksum-2", "test data")
    assert [r.status for r in book.execute_all(job, log=log.append)] == ["executed", "executed"]
    job.parameters = {"factor": 3}
    runs = book.execute_all(job, log=log.append)
    assert runs[0].reasons == ("parameters",)
    executed = nbformat.read(job.executed_dir / "02_second.ipynb", as_version=4)
    assert "value 18" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))

    # A deleted executed notebook runs again even with the same key.
    (job.executed_dir / "01_first.ipynb").unlink()
    assert statuses(book.execute_all(job, log=log.append)) == {"01_first": "executed", "02_second": "cached"}


@pytest.mark.notebooks
def test_a_failing_notebook_names_the_notebook_cell_and_error(tmp_path):
    broken = tmp_path / "01_broken.py"
    broken.write_text(FAILING, encoding="utf-8")
    after = write_notebook(tmp_path, "02_after.py")
    job = make_job(tmp_path, [broken, after])
    with pytest.raises(book.NotebookFailed) as failure:
        book.execute_all(job, log=lambda _: None)
    message = str(failure.value)
    assert "notebook 01_broken.py failed in cell" in message
    assert f"{broken}:12" in message  # the line of the failing cell in the .py
    assert "ValueError: deliberate failure after 6" in message
    assert (job.executed_dir / "01_broken.failed.ipynb").exists()
    assert not (job.executed_dir / "01_broken.ipynb").exists()
    assert not (job.executed_dir / "02_after.ipynb").exists()  # later notebooks never ran
    assert not job.cache_file.exists()  # nothing succeeded, so nothing was cached


@pytest.mark.notebooks
@pytest.mark.slow
def test_make_book_builds_strict_offline_html_and_skips_an_unchanged_rebuild(tmp_path):
    from m3el_lib.book.browser import static_external_references

    from m3el_lib.data.synthetic import write_synthetic_dataset

    gallery_data = write_synthetic_dataset(tmp_path / "syn", n=12, image_every=2)
    job = make_job(tmp_path, [write_notebook(tmp_path, "01_tiny.py", title="Tiny chapter")], gallery_data=gallery_data)
    result = book.make_book(job, log=lambda _: None)
    assert result.rebuilt and result.index.exists()
    chapter = result.chapter_pages()[0]
    html = chapter.read_text(encoding="utf-8")
    assert "Tiny chapter" in html and "Provenance of this page" in html and "data-checksum-1"[:16] in html
    assert (result.html_dir / "data_card.html").exists() and (result.html_dir / "references.html").exists()
    assert static_external_references(result.html_dir) == []
    assert "THEBE_JS_URL" not in html
    # The chapter offers its executed notebook and its source, copied into the book.
    downloads = sorted(p.name for p in (result.html_dir / "_downloads").rglob("01_tiny.*"))
    assert downloads == ["01_tiny.ipynb", "01_tiny.py"] and 'href="../_downloads/' in html
    assert "tag_hide-input" in html and "injected-parameters" not in html
    # The instance gallery: one figure per task, drawn from the data, each with its alt text.
    gallery = (result.html_dir / "instances.html").read_text(encoding="utf-8")
    assert gallery.count('alt="Task ') == 9 and "syn-" in gallery
    assert len(list((result.html_dir / "_images").glob("T*-*.png"))) + len(list((result.html_dir / "_images").glob("I*-*.png"))) == 9
    # Maths is typeset by the MathJax copied into the book, never by a CDN.
    methods = (result.html_dir / "methods.html").read_text(encoding="utf-8")
    assert 'src="_static/mathjax/tex-chtml.js"' in methods and (result.html_dir / "_static/mathjax/tex-chtml.js").is_file()
    assert methods.count('<div class="math notranslate nohighlight">') >= 8

    again = book.make_book(job, log=lambda _: None)
    assert not again.rebuilt and [r.status for r in again.runs] == ["cached"]


@pytest.mark.notebooks
@pytest.mark.slow
def test_a_page_warning_fails_the_build(tmp_path):
    job = make_job(tmp_path, [write_notebook(tmp_path, "01_tiny.py")])
    pages = tmp_path / "book"
    import shutil

    shutil.copytree(book.config.BOOK_DIR, pages, ignore=shutil.ignore_patterns("_build"))
    (pages / "model_card.md").write_text("# Model card\n\nA reference to {doc}`no_such_page`.\n")
    job.book_dir = pages
    with pytest.raises(book.BookBuildFailed, match="no_such_page"):
        book.make_book(job, log=lambda _: None)


TIMED = '''# %% [markdown]
# # Timed

# %% tags=["parameters"]
profile = "sample"

# %%
import time

from m3el_lib.timing import stage

with stage("decode"):
    time.sleep(0.05)
    with stage("encode"):
        time.sleep(0.1)
'''


def test_each_notebook_leaves_its_seconds_per_stage(tmp_path):
    source = tmp_path / "01_timed.py"
    source.write_text(TIMED, encoding="utf-8")
    job = make_job(tmp_path, [source])
    book.execute_all(job, log=lambda _: None)
    profile = book.stage_profile(job)["01_timed"]
    assert profile["encode"]["calls"] == 1 and profile["encode"]["seconds"] >= 0.1
    # exclusive time: the nested encode does not count towards decode
    assert 0.05 <= profile["decode"]["seconds"] < 0.1


def test_stage_time_is_exclusive_and_counted():
    from m3el_lib import timing

    timing.reset()
    with timing.stage("outer"):
        with timing.stage("inner"):
            pass
    with timing.stage("inner"):
        pass
    found = timing.totals()
    assert found["inner"]["calls"] == 2 and found["outer"]["calls"] == 1
    timing.reset()
    assert timing.totals() == {}

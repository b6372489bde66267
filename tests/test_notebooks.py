"""Execute every notebook of the project in the sample profile and build the book strictly.

This is `make book` inside `make test`: the same runner, the same `M3EL_HOME` and so the same
execution cache (notebooks whose inputs did not change since the last `make book` are not
executed again). A failing notebook fails here with the notebook, the cell and the error.
Heavy: marked `notebooks` and `slow`; deselect with `-m "not notebooks"` when iterating.
"""
from __future__ import annotations

import nbformat
import pytest

from m3el_lib import config
from m3el_lib.book import runner as book
from m3el_lib.data.datasets import data_identity
from m3el_lib.book.browser import static_external_references

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]
# Read at import, before conftest gives each test a private M3EL_HOME: the book shares the real one.
SHARED_HOME = config.home()


@pytest.fixture(scope="module")
def built() -> book.BookResult:
    job = book.default_job("sample", home=SHARED_HOME)
    assert job.notebooks, f"no notebooks found in {config.NOTEBOOKS_DIR}: the book has no chapters"
    return book.make_book(job)


def test_every_notebook_has_an_executed_chapter(built):
    names = [path.stem for path in book.discover_notebooks()]
    assert [run.name for run in built.runs] == names
    for page in built.chapter_pages():
        assert page.exists(), f"{page} was not built"


def test_executed_notebooks_ran_in_the_sample_profile_without_errors(built):
    for run in built.runs:
        notebook = nbformat.read(run.executed, as_version=4)
        book.check_outputs(run.source, notebook)  # raises on any error output
        injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and 'profile = "sample"' in injected[0].source, f"{run.name}: no papermill parameters injected"
        assert any(book.PROVENANCE_TAG in c.metadata.get("tags", []) for c in notebook.cells)


def test_every_chapter_shows_its_provenance(built):
    checksum, _ = data_identity("sample")
    for page in built.chapter_pages():
        html = page.read_text(encoding="utf-8")
        assert "Provenance of this page" in html, page
        assert checksum[:16] in html, f"{page}: data checksum missing from the provenance note"
        assert "<code class=\"docutils literal notranslate\"><span class=\"pre\">sample</span></code>" in html


def test_book_loads_nothing_from_the_network(built):
    assert static_external_references(built.html_dir) == []


def test_a_second_build_with_nothing_changed_executes_nothing(built):
    again = book.make_book(book.default_job("sample", home=SHARED_HOME), log=lambda _: None)
    executed = [(run.name, run.reasons) for run in again.runs if run.status != "cached"]
    assert not executed, f"executed again, with nothing changed: {executed}"
    assert not again.rebuilt

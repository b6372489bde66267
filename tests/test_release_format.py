"""The release as its documentation prints it: `/M3EL/...` picture paths, the `M3EL/` folder,
Python-literal records; validated, registered and run through the full profile's stats and
evaluation (with the tiny random-init model: no weights needed)."""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from m3el_lib import config
from m3el_lib.data import registry
from m3el_lib.data.datasets import resolve_dataset
from m3el_lib.cli import main
from m3el_lib.data.io import DatasetError, load_dataset, resolve_image_path
from m3el_lib.data.schema import ImageRef

RELEASE = Path(__file__).parent / "fixtures" / "m3el_release"
RECORDS = RELEASE / "M3EL" / "movies.json"


def zip_of(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.rglob("*")):
            zf.write(file, str(file.relative_to(folder.parent)))
    return archive


def test_documented_paths_resolve_under_the_release_folder():
    dataset = load_dataset(RECORDS)
    assert dataset.release_root == (RELEASE / "M3EL").resolve()
    first = dataset.instances[0]
    assert first.gold.image.local_path == "/M3EL/movies_candidates_images/Kansas Saloon Smashers-Q18151305/Q18151305.jpg"
    for inst in dataset.instances:
        for ref in [inst.image] + [c.image for c in inst.candidates]:
            if ref is not None:
                path = dataset.image_path(ref)
                assert path.is_file() and path.is_relative_to(dataset.release_root), ref


def test_extension_case_differences_are_found_both_ways():
    dataset = load_dataset(RECORDS)
    listed_upper = dataset.image_path(ImageRef("f", "", "/M3EL/movies_candidates_images/Kansas Saloon Smashers-Q1000002/Q1000002.JPG"))
    listed_lower = dataset.image_path(ImageRef("f", "", "/M3EL/movies_candidates_images/Casablanca-Q1000013/Q1000013.jpg"))
    assert listed_upper.name == "Q1000002.jpg" and listed_upper.is_file()
    assert listed_lower.name == "Q1000013.JPG" and listed_lower.is_file()


@pytest.mark.parametrize("local, problem", [
    ("/etc/passwd", "not under the release root /M3EL/"),
    ("/M3EL/../../etc/passwd", "escapes"),
    ("/M3ELX/a.jpg", "not under the release root"),
    ("../a.jpg", "escapes the data root"),
    ("/M3EL/a\0.jpg", "NUL byte"),
])
def test_other_paths_are_refused_naming_file_record_and_field(tmp_path, local, problem):
    record = json.loads(RECORDS.read_text())[1]
    record["candidates"][0]["image"][2] = local
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(DatasetError, match=rf"bad\.json:0: candidates\[0\]\.image: .*{problem}"):
        load_dataset(path)


def test_a_link_leaving_the_release_root_is_refused(tmp_path):
    copy = tmp_path / "M3EL"
    shutil.copytree(RELEASE / "M3EL", copy)
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (copy / "movies_candidates_images" / "escape.jpg").symlink_to(tmp_path / "secret.jpg")
    with pytest.raises(DatasetError, match="through a link"):
        resolve_image_path(copy, ImageRef("f", "", "/M3EL/movies_candidates_images/escape.jpg"))


def test_the_root_folder_name_is_configurable(tmp_path, monkeypatch):
    copy = tmp_path / "MyRelease"
    shutil.copytree(RELEASE / "M3EL", copy)
    text = (copy / "movies.json").read_text().replace('"/M3EL/', '"/MyRelease/')
    (copy / "movies.json").write_text(text)
    with pytest.raises(DatasetError, match="M3EL_RELEASE_ROOT"):
        load_dataset(copy)
    monkeypatch.setenv("M3EL_RELEASE_ROOT", "MyRelease")
    dataset = load_dataset(copy)
    assert dataset.image_path(dataset.instances[0].gold.image).is_file()


def test_python_literal_records_are_read_safely(tmp_path):
    records = json.loads(RECORDS.read_text())
    (tmp_path / "as_printed.jsonl").write_text("\n".join(repr(r) for r in records) + "\n")  # {'Qid': ...}
    (tmp_path / "as_printed_array.json").write_text(repr(records))
    assert len(load_dataset(tmp_path / "as_printed.jsonl")) == 4
    assert len(load_dataset(tmp_path / "as_printed_array.json")) == 4


def test_python_code_in_a_record_file_is_refused_with_how_to_convert(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "evil.jsonl").write_text(f"{{'Qid': __import__('pathlib').Path({str(marker)!r}).touch()}}\n")
    with pytest.raises(DatasetError, match=r"evil\.jsonl:line 1: json: .*ast\.literal_eval"):
        load_dataset(tmp_path / "evil.jsonl")
    assert not marker.exists()


def test_validate_the_documented_format(capsys):
    assert main(["validate", str(RECORDS)]) == 0
    assert "4" in capsys.readouterr().out


@pytest.fixture
def registered_zip(tmp_path):
    """The release zipped inside its `M3EL/` folder and registered (no M3EL_HOME data before)."""
    archive = zip_of(RELEASE / "M3EL", tmp_path / "m3el.zip")
    assert main(["register", "m3el-release", str(archive)]) == 0
    return registry.read_record("m3el-release")


def test_register_a_zip_records_where_the_records_are(registered_zip):
    path = Path(registered_zip["path"])
    assert (path / "movies.json").is_file() and Path(registered_zip["release_root"]).name == "M3EL"
    assert resolve_dataset(profile="full", build=False).path == path
    assert registered_zip["instances"] == 4 and registered_zip["rejected"] == 0
    from m3el_lib.fsutil import current_umask

    version = path.parent.parent  # data/m3el-release/r-<id>/M3EL/
    assert version.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700


def test_full_profile_stats_and_evaluate_on_the_registered_release(registered_zip, tmp_path, capsys):
    assert main(["stats", "--profile", "full", "--out", str(tmp_path / "stats")]) == 0
    assert "4 instances" in capsys.readouterr().out
    coverage = (tmp_path / "stats" / "image_coverage.csv").read_text().splitlines()
    # every listed picture was found on disk under M3EL/, the two extension-case mismatches included
    assert "all,mention,3,4,0.75,3" in coverage and "all,gold_entity,4,4,1.0,4" in coverage
    assert "all,negatives,6,7,0.8571428571428571,6" in coverage
    code = main(["evaluate", "--profile", "full", "--model", "m3el-tiny-random", "--bootstrap", "10", "--json", "--no-save"])
    out = capsys.readouterr()
    assert code == 0, out.err
    tasks = json.loads(out.out)["results"]["candidates"]
    assert len(tasks) == 9 and tasks["TI-TI"]["overall"]["n"] == 3
    for task in tasks.values():
        assert task["overall"]["missing_mention_pictures"] == 0 and task["overall"]["missing_candidate_pictures"] == 0


def test_register_a_folder_in_place_and_reregister_keeps_the_old_until_the_new_is_whole(tmp_path, capsys):
    assert main(["register", "m3el-release", str(RELEASE / "M3EL")]) == 0
    assert Path(registry.read_record("m3el-release")["path"]) == (RELEASE / "M3EL").resolve()
    archive = zip_of(RELEASE / "M3EL", tmp_path / "good.zip")
    assert main(["register", "m3el-release", str(archive)]) == 0
    good = registry.read_record("m3el-release")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("M3EL/movies.json", "[{")
    assert main(["register", "m3el-release", str(broken)]) == 1
    assert "movies.json" in capsys.readouterr().err
    assert registry.read_record("m3el-release") == good and Path(good["path"], "movies.json").is_file()
    home = config.dataset_dir("m3el-release")
    assert [p.name.startswith("r-") for p in home.iterdir()] == [True]  # no staging left, one release


class _Response(io.BytesIO):
    status = 200
    headers = {"Content-Type": "application/zip"}


def test_fetch_of_the_release_unpacks_validates_and_registers_it(tmp_path, capsys):
    payload = zip_of(RELEASE / "M3EL", tmp_path / "m3el.zip").read_bytes()
    path = registry.fetch("m3el-release", opener=lambda request: _Response(payload))
    assert (path / "movies.json").is_file() and path.name == "M3EL"
    record = registry.read_record("m3el-release")
    assert record["verified_by"] == "format" and record["instances"] == 4
    assert resolve_dataset(profile="full", build=False).path == path


def test_register_prints_and_writes_what_it_rejected(tmp_path, capsys):
    folder = tmp_path / "M3EL"
    shutil.copytree(RELEASE / "M3EL", folder)
    records = json.loads((folder / "movies.json").read_text())
    records[2]["Qid"] = "Q12\n"
    (folder / "movies.json").write_text(json.dumps(records))
    assert main(["register", "m3el-release", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "1 record(s) rejected" in err and "movies.json:2: Qid: 'Q12\\n'" in err
    report = Path(registry.read_record("m3el-release")["quarantine"])
    assert json.loads(report.read_text())["record"]["Qid"] == "Q12\n"


def test_a_json_typo_is_not_taken_for_python(tmp_path):
    path = tmp_path / "typo.jsonl"
    path.write_text('{"name": "Rick\'s Caf\u00e9", }\n')
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert "line 1: json: Expecting property name" in str(err.value) and "literal" not in str(err.value)


def test_a_registered_archives_report_names_the_files_where_they_now_are(tmp_path, capsys):
    folder = tmp_path / "M3EL"
    shutil.copytree(RELEASE / "M3EL", folder)
    records = json.loads((folder / "movies.json").read_text())
    records[0]["candidates"][1]["image"][2] = "/etc/passwd"
    (folder / "movies.json").write_text(json.dumps(records))
    assert main(["register", "m3el-release", str(zip_of(folder, tmp_path / "r.zip"))]) == 0
    record = registry.read_record("m3el-release")
    (row,) = [json.loads(line) for line in Path(record["quarantine"]).read_text().splitlines()]
    assert row["file"] == str(Path(record["path"]) / "movies.json") and Path(row["file"]).is_file()
    assert row["problems"][0].startswith(f"{row['file']}:0: candidates[1].image: absolute local path '/etc/passwd'")
    assert record["instances"] == 3 and "1 record(s) rejected" in capsys.readouterr().err

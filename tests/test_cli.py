"""`m3el validate` and `m3el info` behave as documented on good and bad files, in both modes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from m3el_lib.cli import main
from m3el_lib.data.synthetic import write_synthetic_dataset

FIXTURES = Path(__file__).parent / "fixtures" / "release"


def test_validate_good_dataset_prints_summary(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "syn", n=12)
    assert main(["validate", str(data)]) == 0
    out = capsys.readouterr().out
    assert "instances   12" in out
    assert "TI-TI" in out


def test_validate_json_has_the_documented_keys(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "syn", n=9)
    assert main(["validate", str(data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"instances", "topics", "tasks", "image_coverage"} <= set(summary)
    assert summary["instances"] == 9
    assert summary["tasks"]["I-I"]["total"] == 9
    assert summary["image_coverage"]["mention"] == 1.0


def bad_file(tmp_path: Path) -> Path:
    records = json.loads((FIXTURES / "published_example.json").read_text())
    broken = json.loads(json.dumps(records[0]))
    broken["Qid"] = "Q0x"
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([records[0], broken, records[0]]))
    return path


def test_validate_strict_lists_errors_and_fails(tmp_path, capsys):
    assert main(["validate", str(bad_file(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert "mixed.json:1: Qid: 'Q0x' is not a Q<digits> (Wikidata) id" in err


def test_validate_lenient_loads_good_records_and_reports_the_rest(tmp_path, capsys):
    report = tmp_path / "quarantine.jsonl"
    code = main(["validate", str(bad_file(tmp_path)), "--lenient", "--json", "--quarantine", str(report)])
    captured = capsys.readouterr()
    assert code == 2  # usable, but not clean: scripts can tell
    assert json.loads(captured.out)["instances"] == 2
    assert json.loads(captured.out)["rejected"] == 1
    assert "1 record(s) rejected" in captured.err
    assert json.loads(report.read_text().splitlines()[0])["where"] == "1"


def test_validate_missing_path(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_console_script_info_runs():
    out = subprocess.run([sys.executable, "-m", "m3el_lib", "info"], capture_output=True, text=True, check=True).stdout
    assert "profile         sample" in out
    assert "M3EL_HOME" in out and "torch" in out


@pytest.mark.slow
def test_train_on_an_empty_home_builds_the_sample_first(isolated_home, capsys):
    """`m3el train --profile sample` resolves its data like `m3el evaluate`: M³EL-mini is built."""
    assert not (isolated_home / "data").exists()
    code = main(["train", "--profile", "sample", "--set", 'model="m3el-tiny-random"', "--set", "max_steps=1",
                 "--set", "max_train_instances=8", "--set", "max_val_instances=8", "--set", "batch_size=4",
                 "--set", "progress=false", "--set", "epochs=1"])
    assert code == 0, capsys.readouterr().err
    assert (isolated_home / "data" / "m3el-mini" / "manifest.json").is_file()
    run = isolated_home / "results" / "sample" / "clip_nd"
    assert (run / "best.pt").is_file() and (run / "MODEL_CARD.md").is_file()


def test_book_is_a_subcommand(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["book", "--help"])
    assert stop.value.code == 0 and "--force" in capsys.readouterr().out

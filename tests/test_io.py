"""Release-format loading, validation (strict and lenient), quarantine and round trips."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m3el_lib.data.io import (
    DatasetError,
    instance_to_record,
    is_safe_relative_path,
    load_dataset,
    record_to_instance,
    resolve_image_path,
    write_dataset,
    write_records,
)
from m3el_lib.data.schema import Entity, ImageRef, Instance

FIXTURES = Path(__file__).parent / "fixtures" / "release"


def example_record() -> dict:
    return json.loads((FIXTURES / "published_example.json").read_text())[0]


def write_json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records))
    return path


def test_published_example_loads_with_gold_among_candidates():
    dataset = load_dataset(FIXTURES / "published_example.json")
    (inst,) = dataset.instances
    assert inst.gold.description == "1942 film by Michael Curtiz"
    assert inst.gold_index == 1
    assert inst.image.local_path == "images/Casablanca_poster.jpg"
    assert not inst.candidates[2].has_image and not inst.candidates[3].has_image
    # Two candidates have no picture, so no entity-side I or TI task.
    assert [t.name for t in inst.tasks()] == ["T-T", "I-T", "TI-T"]
    assert len(dataset.checksum) == 64


def test_json_lines_and_folder_load_the_same(tmp_path):
    record = example_record()
    (tmp_path / "a.jsonl").write_text(json.dumps(record) + "\n\n" + json.dumps(record) + "\n")
    write_json(tmp_path / "b.json", [record])
    (tmp_path / "manifest.json").write_text("{}")  # not a record file
    dataset = load_dataset(tmp_path)
    assert len(dataset) == 3
    assert [f.name for f in dataset.files] == ["a.jsonl", "b.json"]


def mutate(change):
    record = example_record()
    change(record)
    return record


MALFORMED = {
    "missing field": (lambda r: r.pop("sentence"), "0: sentence: missing field"),
    "wrong type": (lambda r: r.update(name=42), "0: name: expected a string, got int"),
    "bad qid": (lambda r: r.update(Qid="11424001"), "0: Qid: '11424001' is not a Q<digits> (Wikidata) id"),
    "bad candidate qid": (lambda r: r["candidates"][0].update(Qid="P31"), "0: candidates[0].Qid: 'P31' is not"),
    "gold missing": (lambda r: r["candidates"].pop(1), "0: candidates: gold entity Q11424001 is not among the candidates"),
    "duplicate candidates": (lambda r: r["candidates"].append(copy.deepcopy(r["candidates"][0])), "0: candidates[4].Qid: duplicate candidate Q7903"),
    "image shape": (lambda r: r.update(image=["only-a-name.jpg"]), "0: image: expected [file name, URL, local path]"),
    "candidate image shape": (lambda r: r["candidates"][0].update(image={"file": "x"}), "0: candidates[0].image: expected"),
    "escaping path": (lambda r: r.update(image=["x.jpg", "", "../../etc/passwd"]), "0: image: local path '../../etc/passwd' escapes the data root"),
    "absolute path": (lambda r: r.update(image=["x.jpg", "", "/etc/passwd"]), "0: image: absolute local path '/etc/passwd' is not under the release root /M3EL/"),
    "empty candidates": (lambda r: r.update(candidates=[]), "0: candidates: expected a non-empty list"),
    "not an object": (lambda r: r.clear() or r.update(__replace__=True), None),
    "bad split": (lambda r: r.update(split="dev"), "0: split: 'dev' is not one of train, val, test"),
    "wrong gold index": (lambda r: r.update(gold_index=0), "0: gold_index: candidate 0 is Q7903, not the gold Q11424001"),
}


@pytest.mark.parametrize("kind", sorted(k for k in MALFORMED if MALFORMED[k][1]))
def test_strict_mode_names_file_record_field_and_problem(tmp_path, kind):
    change, expected = MALFORMED[kind]
    path = write_json(tmp_path / "bad.json", [mutate(change)])
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert f"{path}:{expected}" in str(err.value)


def test_record_that_is_not_an_object(tmp_path):
    path = write_json(tmp_path / "bad.json", [example_record(), "just a string"])
    with pytest.raises(DatasetError, match=r"bad.json:1: record: expected an object, got str"):
        load_dataset(path)


def test_truncated_json_array_reports_its_line(tmp_path):
    text = json.dumps([example_record()], indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DatasetError, match=r"cut.json:line \d+: json: "):
        load_dataset(path)


def test_jsonl_bad_line_reports_its_line_and_lenient_keeps_the_rest(tmp_path):
    good = json.dumps(example_record())
    path = tmp_path / "data.jsonl"
    path.write_text(good + "\n" + good[:40] + "\n" + json.dumps(mutate(MALFORMED["bad qid"][0])) + "\n" + good + "\n")
    with pytest.raises(DatasetError, match=r"data.jsonl:line 2: json: "):
        load_dataset(path)
    report = tmp_path / "q.jsonl"
    dataset = load_dataset(path, strict=False, quarantine_path=report)
    assert len(dataset) == 2
    assert len(dataset.rejected) == 2
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["where"] for r in rows] == ["line 2", "line 3"]  # JSON Lines records are named by line
    assert "line 2: json:" in rows[0]["problems"][0]
    assert rows[0]["raw_text"] == good[:40] and "record" not in rows[0]  # undecodable: its text is kept
    assert rows[1]["record"]["Qid"] == "11424001"  # the rejected record is kept whole
    assert dataset.quarantine_path == report


def test_lenient_mode_reports_every_problem_of_a_record(tmp_path):
    record = mutate(lambda r: (r.update(Qid="bad"), r.pop("sentence")))
    path = write_json(tmp_path / "x.json", [record, example_record()])
    dataset = load_dataset(path, strict=False, quarantine_path=tmp_path / "q.jsonl")
    assert len(dataset) == 1
    problems = [str(p) for p in dataset.rejected[0].problems]
    assert any("sentence: missing field" in p for p in problems)
    assert any("Qid: 'bad'" in p for p in problems)


def test_snapshot_ids_need_their_own_namespace(tmp_path):
    local = mutate(lambda r: (r.update(Qid="X5", kb="m3el-snapshot"), [c.update(Qid=f"X{i + 4}") for i, c in enumerate(r["candidates"])]))
    local["candidates"][1]["Qid"] = "X5"
    assert load_dataset(write_json(tmp_path / "ok.json", [local])).instances[0].kb == "m3el-snapshot"
    wrong = mutate(lambda r: r.update(Qid="X5"))  # default kb is Wikidata
    with pytest.raises(DatasetError, match="not a Q<digits>"):
        load_dataset(write_json(tmp_path / "bad.json", [wrong]))


def test_image_paths_never_leave_the_root(tmp_path):
    assert is_safe_relative_path("images/a.jpg")
    assert is_safe_relative_path("images/../b.jpg")
    assert not is_safe_relative_path("images/../../b.jpg")
    assert not is_safe_relative_path("C:\\x.jpg")
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"x")
    (root / "images" / "link.jpg").symlink_to(outside)
    with pytest.raises(DatasetError, match="through a link"):
        resolve_image_path(root, ImageRef("link.jpg", "", "images/link.jpg"))
    assert resolve_image_path(root, ImageRef("a.jpg", "", "images/a.jpg")) == (root / "images" / "a.jpg").resolve()


def test_writer_round_trips_the_published_example(tmp_path):
    record = example_record()
    out = write_records(tmp_path / "out.json", [record_to_instance(record)])
    again = json.loads(out.read_text())[0]
    assert again.pop("gold_index") == 1
    # An empty image list and null both mean "no image"; the writer normalises to null.
    record["candidates"][3]["image"] = None
    assert again == record


def test_write_dataset_splits_files_and_loads_back(tmp_path):
    inst = record_to_instance(example_record())
    from dataclasses import replace

    items = [replace(inst, split="train", instance_id="a"), replace(inst, split="test", instance_id="b")]
    files = write_dataset(items, tmp_path, manifest={"n": 2})
    assert sorted(f.name for f in files) == ["manifest.json", "test.jsonl", "train.jsonl"]
    loaded = load_dataset(tmp_path)
    assert sorted(i.instance_id for i in loaded.instances) == ["a", "b"]


# ---------------------------------------------------------------- round-trip property

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
safe_path = st.lists(st.text(alphabet="abcxyz_-.0", min_size=1, max_size=8).filter(lambda s: s not in {".", ".."}), min_size=1, max_size=3).map("/".join)
image = st.one_of(st.none(), st.builds(ImageRef, text, text, safe_path))


@st.composite
def instances(draw) -> Instance:
    ids = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=6, unique=True))
    candidates = tuple(Entity(f"Q{i}", draw(text), draw(text), draw(image)) for i in ids)
    gold = draw(st.sampled_from(candidates))
    return Instance(
        qid=gold.qid, name=gold.name, description=gold.description, sentence=draw(text), image=draw(image),
        candidates=candidates, topic=draw(st.sampled_from(["", "movies", "nature"])),
        split=draw(st.sampled_from(["", "train", "val", "test"])), instance_id=draw(text),
        mention_image_kind=draw(st.sampled_from(["unknown", "distinct", "augmented", "same_file", "none"])),
        provenance=draw(st.dictionaries(st.sampled_from(["source", "page"]), text, max_size=2)),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(instances(), min_size=1, max_size=5), st.sampled_from([".json", ".jsonl"]))
def test_round_trip_property(tmp_path_factory, items, suffix):
    path = tmp_path_factory.mktemp("rt") / f"data{suffix}"
    write_records(path, items)
    loaded = load_dataset(path).instances
    assert loaded == items
    assert [instance_to_record(i) for i in loaded] == [instance_to_record(i) for i in items]

"""Dataset statistics checked against a hand-made fixture whose answers were worked out by hand.

The fixture `tests/fixtures/stats/records.jsonl` (pictures under `images/`):

| id | topic  | split  | mention picture       | candidates (gold first), name / picture                                   |
|----|--------|--------|-----------------------|---------------------------------------------------------------------------|
| r1 | movies | train  | m1.png (on disk)      | Q1 Mercury / on disk; Q2 Mercury / on disk; Q3 Freddie Mercury / listed, MISSING |
| r2 | movies | test   | none                  | Q4 Casablanca / on disk; Q5 Casablanca / none                             |
| r3 | nature | train  | m3.png (on disk)      | Q6 Jaguar; Q7 Jaguar; Q8 "jaguar" (lower case): all on disk; gold is 2nd  |
| r4 | nature | val    | m4.png (listed, MISSING) | Q9 Crane / on disk; Q10 Crane / on disk; its sentence is empty         |
| r5 | people | (none) | none                  | Q11 George Washington; Q12 Washington; Q13 Washington, D.C.: no pictures  |
| r6 | people | train  | none                  | no candidates: rejected by the lenient loader                             |

Worked answers (what the assertions below check):
- tasks (mention modalities x entity modalities): r1 and r3 all 9 (text + picture on both
  sides); r2 T-T only (Q5 has no picture); r4 I-T, I-I, I-TI (no sentence); r5 T-T.
- name ambiguity (candidates named exactly like the mention): r1 2, r2 2, r3 2 ("jaguar" is
  not "Jaguar"), r4 2, r5 1 -> histogram {1: 1, 2: 4}; share ambiguous = 4/5; the name alone
  decides only r5 (its gold is the one candidate called "George Washington") -> 1/5.
- words: sentences r1 6, r2 5, r3 9, r4 0, r5 7; gold descriptions 4, 5, 5, 3, 6;
  candidate descriptions movies [4, 5, 2, 5, 3], nature [3, 5, 3, 3, 3], people [6, 5, 5].
- content words (stop words removed), sentence vs gold description:
  r1 {mercury, roman, god, carried, messages} vs {roman, god, commerce}: Jaccard 2/6, coverage 2/3;
  r3 {jaguar, rested, river, americas} vs {large, cat, americas}: Jaccard 1/6, coverage 1/3;
  r2, r4, r5 share nothing: 0 and 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m3el_lib.statistics import core as S
from m3el_lib.statistics import pipeline as P
from m3el_lib.cli import main
from m3el_lib.data.io import DatasetError, load_dataset
from m3el_lib.statistics.mel_datasets import PUBLISHED, UNKNOWN, comparison_table
from m3el_lib.data.schema import TASK_NAMES, Entity, ImageRef, Instance

FIXTURE = Path(__file__).parent / "fixtures" / "stats"


@pytest.fixture(scope="module")
def fixture_stats(tmp_path_factory):
    quarantine = tmp_path_factory.mktemp("quarantine") / "q.jsonl"
    dataset = load_dataset(FIXTURE, strict=False, quarantine_path=quarantine)
    return dataset, S.compute_stats(dataset, label="fixture")


def test_the_fixture_loads_five_instances_and_rejects_the_empty_one(fixture_stats):
    dataset, stats = fixture_stats
    assert [i.instance_id for i in dataset.instances] == ["r1", "r2", "r3", "r4", "r5"]
    assert stats.overview["rejected_records"] == 1
    assert stats.checksum == dataset.checksum and len(stats.checksum) == 64


def test_overview(fixture_stats):
    overview = fixture_stats[1].overview
    assert overview["instances"] == 5
    assert overview["topics"] == 3
    assert overview["tasks_with_instances"] == 9
    assert overview["entities"] == 13  # Q1..Q13
    assert overview["gold_entities"] == 5
    assert overview["unique_mention_names"] == 5
    assert overview["candidates_total"] == 13  # 3 + 2 + 3 + 2 + 3
    assert overview["candidates_mean"] == pytest.approx(2.6)
    assert overview["instances_without_gold"] == 0
    assert overview["ambiguous_share"] == pytest.approx(0.8)
    assert overview["name_decides_share"] == pytest.approx(0.2)  # only r5: George Washington is the one so named
    assert overview["files_checked"] is True
    assert overview["knowledge_bases"] == {"wikidata": 5}


def test_topic_task_counts_with_zeros(fixture_stats):
    table = fixture_stats[1].table("topic_task")
    assert list(table.index) == ["movies", "nature", "people", "all"]
    assert list(table.columns) == ["instances", *TASK_NAMES]
    expected = {
        # instances, T-T, T-I, T-TI, I-T, I-I, I-TI, TI-T, TI-I, TI-TI
        "movies": [2, 2, 1, 1, 1, 1, 1, 1, 1, 1],
        "nature": [2, 1, 1, 1, 2, 2, 2, 1, 1, 1],
        "people": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],  # no pictures at all: zeros, not missing
        "all": [5, 4, 2, 2, 3, 3, 3, 2, 2, 2],
    }
    for topic, row in expected.items():
        assert table.loc[topic].tolist() == row, topic


def test_topic_task_split_keeps_every_split_topic_pair(fixture_stats):
    table = fixture_stats[1].table("topic_task_split")
    assert len(table) == 4 * 3  # splits train, val, test, (none) x 3 topics
    assert table.loc[("train", "movies")].tolist() == [1] * 10
    assert table.loc[("test", "movies"), "T-T"] == 1 and table.loc[("test", "movies"), "T-I"] == 0
    assert table.loc[("val", "nature"), ["T-T", "I-T", "I-I", "I-TI"]].tolist() == [0, 1, 1, 1]
    assert table.loc[("(none)", "people"), "instances"] == 1
    assert table.loc[("val", "people")].sum() == 0


def test_topic_split(fixture_stats):
    table = fixture_stats[1].table("topic_split")
    assert list(table.columns) == ["train", "val", "test", "(none)", "total"]
    assert table.loc["movies"].tolist() == [1, 0, 1, 0, 2]
    assert table.loc["nature"].tolist() == [1, 1, 0, 0, 2]
    assert table.loc["people"].tolist() == [0, 0, 0, 1, 1]
    assert table.loc["all"].tolist() == [2, 1, 1, 1, 5]


def test_per_topic_entities_mentions_candidates(fixture_stats):
    table = fixture_stats[1].table("per_topic")
    assert table.loc["movies", "entities"] == 5 and table.loc["nature", "entities"] == 5
    assert table.loc["people", "entities"] == 3 and table.loc["all", "entities"] == 13
    assert table.loc["movies", "gold_entities"] == 2 and table.loc["people", "gold_entities"] == 1
    assert table.loc["movies", "candidates_mean"] == 2.5 and table.loc["movies", "candidates_min"] == 2
    assert table.loc["people", "candidates_max"] == 3
    assert table.loc["all", "same_name_mean"] == pytest.approx(9 / 5)
    assert table.loc["movies", "ambiguous_share"] == 1.0 and table.loc["people", "ambiguous_share"] == 0.0
    assert table.loc["people", "name_decides_share"] == 1.0 and table.loc["movies", "name_decides_share"] == 0.0


def test_candidate_and_ambiguity_distributions(fixture_stats):
    stats = fixture_stats[1]
    cands = stats.table("candidates_distribution")
    assert cands["candidates"].tolist() == [0, 1, 2, 3]
    assert cands["instances"].tolist() == [0, 0, 2, 3]
    assert cands["share"].tolist() == pytest.approx([0, 0, 0.4, 0.6])
    ambiguity = stats.table("ambiguity_distribution")
    assert ambiguity["same_name_candidates"].tolist() == [0, 1, 2]
    assert ambiguity["instances"].tolist() == [0, 1, 4]


def test_image_coverage_per_topic_and_side(fixture_stats):
    table = fixture_stats[1].table("image_coverage").set_index(["topic", "side"])
    expected = {
        # (topic, side): (with a listed picture, out of, files on disk)
        ("movies", "mention"): (1, 2, 1),
        ("movies", "gold_entity"): (2, 2, 2),
        ("movies", "negatives"): (2, 3, 1),  # Q2 on disk, Q3 listed but missing, Q5 none
        ("nature", "mention"): (2, 2, 1),  # m4.png is missing
        ("nature", "negatives"): (3, 3, 3),
        ("people", "mention"): (0, 1, 0),
        ("people", "negatives"): (0, 2, 0),
        ("all", "mention"): (3, 5, 2),
        ("all", "gold_entity"): (4, 5, 4),
        ("all", "negatives"): (5, 8, 4),
    }
    for key, (with_image, total, files) in expected.items():
        row = table.loc[key]
        assert (row["with_image"], row["total"], row["files_present"]) == (with_image, total, files), key
    assert table.loc[("movies", "all_candidates"), "with_image"] == 1
    assert table.loc[("all", "all_candidates"), "share"] == pytest.approx(0.6)
    assert table.loc[("people", "gold_entity"), "share"] == 0.0


def test_mention_image_kinds(fixture_stats):
    table = fixture_stats[1].table("mention_image_kinds")
    assert list(table.columns) == ["distinct", "augmented", "same_file", "unknown", "none"]
    assert table.loc["movies"].tolist() == [1, 0, 0, 0, 1]
    assert table.loc["nature"].tolist() == [0, 1, 1, 0, 0]
    assert table.loc["people"].tolist() == [0, 0, 0, 1, 0]  # no kind given: unknown
    assert table.loc["all"].tolist() == [1, 1, 1, 1, 1]


def test_ambiguity_and_picture_kinds_per_topic_and_split(fixture_stats):
    table = fixture_stats[1].table("ambiguity_and_picture_kinds")
    assert table.loc["all", ["instances", "with_mention_picture", "distinct", "augmented"]].tolist() == [5, 3, 1, 1]
    assert table.loc["all", "ambiguous_share"] == pytest.approx(4 / 5)
    assert table.loc["all", "distinct_share"] == pytest.approx(1 / 3)  # r1 distinct; r3, r4 augmented and same file
    assert table.loc["movies", "distinct_share"] == 1.0 and table.loc["people", "ambiguous_share"] == 0.0
    test = fixture_stats[1].table("ambiguity_and_picture_kinds_test")  # only r2: ambiguous, no mention picture
    assert test.loc["all", ["instances", "with_mention_picture"]].tolist() == [1, 0]
    assert test.loc["all", "ambiguous_share"] == 1.0 and test.loc["all", "distinct_share"] == 0.0
    assert test.loc["nature", "instances"] == 0


def test_text_lengths_in_words(fixture_stats):
    table = fixture_stats[1].table("text_lengths").set_index(["topic", "field"])
    assert table.loc[("movies", "sentence"), "mean"] == 5.5
    nature = table.loc[("nature", "sentence")]
    assert (nature["min"], nature["median"], nature["max"]) == (0, 4.5, 9)
    assert nature["p90"] == pytest.approx(8.1)  # linear interpolation between 0 and 9
    overall = table.loc[("all", "sentence")]
    assert (overall["mean"], overall["median"], overall["p90"]) == (5.4, 6.0, pytest.approx(8.2))
    assert table.loc[("all", "gold_description"), "mean"] == pytest.approx(4.6)
    assert table.loc[("movies", "candidate_description"), "mean"] == pytest.approx(3.8)
    assert table.loc[("movies", "candidate_description"), "min"] == 2
    assert table.loc[("people", "candidate_description"), "count"] == 3
    assert table.loc[("all", "candidate_description"), "mean"] == pytest.approx(52 / 13)


def test_vocabulary_overlap(fixture_stats):
    stats = fixture_stats[1]
    per_instance = stats.per_instance.set_index("instance_id")
    assert per_instance.loc["r1", "jaccard"] == pytest.approx(2 / 6)
    assert per_instance.loc["r1", "description_coverage"] == pytest.approx(2 / 3)
    assert per_instance.loc["r3", "jaccard"] == pytest.approx(1 / 6)
    table = stats.table("vocabulary_overlap")
    assert table.loc["movies", "mean_jaccard"] == pytest.approx(1 / 6)
    assert table.loc["movies", "mean_description_coverage"] == pytest.approx(1 / 3)
    assert table.loc["nature", "mean_jaccard"] == pytest.approx(1 / 12)
    assert table.loc["people", "no_shared_word_share"] == 1.0
    assert table.loc["all", "mean_jaccard"] == pytest.approx(0.1)
    assert table.loc["all", "mean_description_coverage"] == pytest.approx(0.2)
    # Whole vocabularies: movies 9 sentence words, 7 description words, 2 shared -> 2/14.
    assert table.loc["movies", ["sentence_vocabulary", "description_vocabulary"]].tolist() == [9, 7]
    assert table.loc["movies", "vocabulary_jaccard"] == pytest.approx(1 / 7)
    assert table.loc["nature", "vocabulary_jaccard"] == pytest.approx(1 / 9)
    assert table.loc["all", "vocabulary_jaccard"] == pytest.approx(3 / 31)


def test_content_words_drop_stop_words_and_split_on_punctuation():
    assert S.content_words("The long-legged bird, of 1942!") == {"long", "legged", "bird", "1942"}
    assert S.word_count("  two   words ") == 2


# ---------------------------------------------------------------- awkward data never crashes


def _entity(qid: str, name: str = "N", image: bool = False) -> Entity:
    return Entity(qid, name, "d", ImageRef(f"{qid}.png", "", f"images/{qid}.png") if image else None)


def test_no_candidates_no_gold_no_topic_and_empty_data():
    odd = [
        Instance("Q1", "A", "x", "a sentence", None, ()),  # no candidates at all
        Instance("Q2", "B", "y", "b sentence", None, (_entity("Q3", "B"),)),  # gold missing
    ]
    stats = S.compute_stats(odd, check_files=False)
    assert stats.overview["instances_without_candidates"] == 1
    assert stats.overview["instances_without_gold"] == 2
    assert list(stats.table("topic_task").index) == ["(none)", "all"]
    assert stats.table("topic_task").loc["(none)", "T-T"] == 1  # only the one with a candidate
    coverage = stats.table("image_coverage").set_index(["topic", "side"])
    assert coverage.loc[("all", "gold_entity"), "total"] == 0 and coverage.loc[("all", "gold_entity"), "share"] == 0
    empty = S.compute_stats([], check_files=False)
    assert empty.overview["instances"] == 0
    assert empty.table("topic_task").loc["all"].sum() == 0


@st.composite
def instances(draw):
    candidates = tuple(
        Entity(f"Q{i + 1}", draw(st.sampled_from(["", " ", "Name"])), draw(st.sampled_from(["", "desc"])),
               ImageRef("p.png", "", "p.png") if draw(st.booleans()) else None)
        for i in range(draw(st.integers(0, 3)))
    )
    image = draw(st.sampled_from([None, ImageRef("m.png", "", "m.png"), ImageRef("m.png", "http://x/m.png", ""),
                                  ImageRef("", "", "")]))
    return Instance("Q1", "Name", "desc", draw(st.sampled_from(["", "  ", "a sentence"])), image, candidates)


@settings(max_examples=150, deadline=None)
@given(st.lists(instances(), min_size=1, max_size=6))
def test_task_columns_agree_with_instance_tasks(batch):
    """The memoised task lookup must say exactly what Instance.tasks() says, for any modalities."""
    table, _, _ = S.instance_table(batch)
    for position, inst in enumerate(batch):
        qualified = {t.name for t in inst.tasks()}
        assert {name for name in TASK_NAMES if table.at[position, name]} == qualified


# ---------------------------------------------------------------- comparison table


def test_comparison_table_names_a_source_for_every_row_and_measures_ours(fixture_stats):
    stats = fixture_stats[1]
    table = comparison_table(stats, dataset="fixture", profile="sample").set_index("dataset")
    assert list(table.index) == ["WikiMEL", "RichpediaMEL", "WikiDiverse", "M³EL (release)", "fixture"]
    assert all(source.strip() for source in table["source"])
    release = table.loc["M³EL (release)"]
    assert (release["size"], release["topics"], release["tasks"]) == ("79,625 instances", "5", "9")
    assert release["knowledge_base"] == UNKNOWN
    ours = table.loc["fixture"]
    assert (ours["size"], ours["topics"], ours["tasks"]) == ("5 instances", "3", "9")
    assert stats.checksum[:12] in ours["source"]
    # No published row may carry a bare number without its unit.
    for row in PUBLISHED:
        assert row.size == UNKNOWN or any(unit in row.size for unit in ("instances", "pairs", "samples"))


# ---------------------------------------------------------------- writing and the command line


def test_write_stats_writes_tables_figures_and_provenance(fixture_stats, tmp_path):
    dataset, stats = fixture_stats
    written = P.write_stats(stats, tmp_path, profile="sample", parameters={"why": "test"},
                            instances=dataset.instances, root=dataset.root,
                            comparison=comparison_table(stats, "fixture"))
    names = {p.name for p in written}
    for table in ("overview", "topic_task", "topic_task_split", "image_coverage", "text_lengths",
                  "vocabulary_overlap", "mel_datasets"):
        assert f"{table}.csv" in names
    for figure in ("topic_task_heatmap", "text_lengths", "candidates_ambiguity", "image_coverage", "example_gallery"):
        assert f"{figure}.png" in names and f"{figure}.svg" in names
        assert (tmp_path / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (tmp_path / f"{figure}.svg").read_bytes()[:2000]
    for path in written:
        provenance = json.loads(path.with_name(path.name + ".provenance.json").read_text())
        assert provenance["data_checksum"] == dataset.checksum
        assert provenance["parameters"]["why"] == "test" and provenance["git_commit"]
    assert (tmp_path / "topic_task.csv").read_text().splitlines()[3].startswith("people,1,1,0,0,0,0,0,0,0,0")


def test_gallery_draws_missing_pictures_as_labelled_boxes(fixture_stats):
    from m3el_lib.reports.stats_figures import example_gallery

    dataset, stats = fixture_stats
    examples = {"movies": dataset.instances[0], "nature": dataset.instances[3]}  # r1 (Q3 missing), r4 (m4 missing)
    fig = example_gallery(examples, dataset.root, stats, max_candidates=3)
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert "file missing" in labels
    nature_row = fig.axes[3]  # second row, first column: the missing mention picture of r4
    assert [t.get_text() for t in nature_row.texts] == ["file missing"]


def test_examples_prefer_instances_with_pictures_on_disk(fixture_stats):
    dataset, _ = fixture_stats
    examples = S.example_instances(dataset.instances, dataset.root)
    assert {topic: inst.instance_id for topic, inst in examples.items()} == {"movies": "r1", "nature": "r3", "people": "r5"}


def test_cli_stats_strict_fails_on_the_bad_record_and_lenient_writes(tmp_path, capsys):
    assert main(["stats", str(FIXTURE), "--out", str(tmp_path / "strict"), "--no-figures"]) == 1
    assert "candidates" in capsys.readouterr().err
    assert main(["stats", str(FIXTURE), "--out", str(tmp_path / "out"), "--lenient", "--no-figures"]) == 0
    assert "5 instances, 3 topics, 9 tasks" in capsys.readouterr().out
    topic_task = (tmp_path / "out" / "topic_task.csv").read_text()
    assert topic_task.splitlines()[-1] == "all,5,4,2,2,3,3,3,2,2,2"
    assert not list((tmp_path / "out").glob("*.png"))


def test_default_output_folder_is_the_profile_results(isolated_home):
    assert P.stats_dir("sample") == isolated_home / "results" / "sample" / "stats"


def test_strict_loading_of_the_fixture_names_file_and_record():
    with pytest.raises(DatasetError, match=r"records\.jsonl:line 6: candidates"):
        load_dataset(FIXTURE)


# ---------------------------------------------------------------- picture look-ups stay inside the root

_PARTS = st.sampled_from(["a", "b", "..", ".", "", "C:", "x.png"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PARTS, min_size=1, max_size=6), st.sampled_from(["/", "\\"]), st.booleans())
def test_fast_path_rule_agrees_with_a_part_by_part_walk(parts, separator, absolute):
    from pathlib import PurePosixPath

    from m3el_lib.data.io import split_local_path

    local = ("/" if absolute else "") + separator.join(parts)
    if not local:
        return
    posix = PurePosixPath(local.replace("\\", "/"))
    depth, safe = 0, not posix.is_absolute() and not (len(local) > 1 and local[1] == ":")
    for part in posix.parts if safe else ():
        depth += -1 if part == ".." else (0 if part == "." else 1)
        safe = safe and depth >= 0
    assert (split_local_path(local) is not None) == safe, local


def test_file_checker_refuses_links_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "images").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    (root / "images" / "real.png").write_bytes(b"x")
    (root / "images" / "escape.png").symlink_to(outside / "secret.png")
    (root / "images" / "inside.png").symlink_to(root / "images" / "real.png")
    (root / "linked").symlink_to(outside)  # a whole folder pointing out
    checker = S._FileChecker(root)

    def present(local: str) -> bool:
        return checker.present(ImageRef("f", "", local))

    assert present("images/real.png") and present("images/./real.png") and present("images/inside.png")
    assert not present("images/escape.png")
    assert not present("linked/secret.png")
    assert not present("../outside/secret.png")
    assert not present("images/absent.png") and not present("absent/absent.png")

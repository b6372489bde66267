"""The sentences and lists the chapters glue into their prose (m3el_lib.reports.findings): each
remark appears only when the numbers bear it out, and the numbers are the tables' own."""
from __future__ import annotations

import pandas as pd

from m3el_lib.evaluation.baselines import CHANCE
from m3el_lib.reports import findings


def test_value_list_keeps_order_and_formats_each_value():
    assert findings.value_list({"T-T": 2219, "T-I": 1390}) == "T-T 2,219, T-I 1,390"
    assert findings.value_list(pd.Series({"a": 0.25, "b": 0.5}), ".0%") == "a 25%, b 50%"
    assert findings.value_list({}) == "none"


def test_negative_tiers_are_shares_of_the_manifest_counts_or_say_they_are_missing():
    assert findings.negative_tiers({"same_name": 3, "similar_text": 1}) == "same name 75%, similar text 25%"
    for missing in (None, {}, {"same_name": 0}):
        assert findings.negative_tiers(missing).startswith("not recorded")


def test_statistics_remarks_only_say_what_the_numbers_bear_out():
    counts = pd.Series({"T-T": 100, "T-I": 40, "I-I": 30})
    by_topic = pd.DataFrame({"T-T": [60, 40], "T-I": [30, 10], "I-I": [25, 5]}, index=["films", "flags"])
    remarks = findings.statistics_remarks(counts, by_topic, name_decides_share=0.8, description_coverage=0.64)
    lines = remarks.splitlines()
    assert len(lines) == 3 and all(line.startswith("- ") for line in lines)
    assert "30 instances qualify for the smallest picture task, against 100 for T-T; flags has only 5" in lines[0]
    assert "name alone picks the gold" in lines[1] and "(64% of its content words" in lines[2]
    quiet = findings.statistics_remarks(counts, by_topic, name_decides_share=0.5, description_coverage=0.2)
    assert quiet.splitlines()[1:] == [] and "scarce" in quiet
    assert findings.statistics_remarks(counts[["T-T"]], by_topic[["T-T"]], 0.1, 0.1) == findings.NO_REMARK


def _row(model, task, acc, lo, hi, chance=0.25):
    return {"model": model, "task": task, "topic": "all", "mode": "candidates", "acc@1": acc, "acc@1_lo": lo,
            "acc@1_hi": hi, "chance_acc@1": chance, "n": 100}


def test_baseline_findings_count_the_tasks_whose_interval_clears_chance():
    frame = pd.DataFrame([
        _row(CHANCE, "T-T", 0.25, 0.25, 0.25), _row(CHANCE, "T-I", 0.25, 0.25, 0.25),
        _row("TF-IDF", "T-T", 0.9, 0.85, 0.95),
        _row("mini", "T-T", 0.6, 0.5, 0.7), _row("mini", "T-I", 0.3, 0.2, 0.4),
    ])
    lines = findings.baseline_findings(frame).splitlines()
    assert lines == [
        "- **TF-IDF**: scored 1 task(s); Acc@1 0.900-0.900; 95% interval above chance on 1: T-T.",
        "- **mini**: scored 2 task(s); Acc@1 0.300-0.600; 95% interval above chance on 1: T-T.",
    ]
    with_clip = findings.baseline_findings(frame, clip_model="mini", sample_model=True).splitlines()
    assert with_clip[:2] == lines and "T-I 0.300 (chance 0.250); 95% intervals T-I 0.200-0.400" in with_clip[2]
    assert with_clip[3] == "- Per topic, T-I: 95% interval above chance on no topic; not on any topic."


def test_baseline_findings_name_the_topics_where_the_sample_clip_clears_chance():
    def topic_row(topic, lo, n):
        return {**_row("mini", "T-I", lo + 0.05, lo, lo + 0.1), "topic": topic, "n": n}
    frame = pd.DataFrame([_row(CHANCE, "T-I", 0.25, 0.25, 0.25), _row("mini", "T-I", 0.3, 0.2, 0.4),
                          topic_row("nature", 0.31, 99), topic_row("countries", 0.16, 1860),
                          topic_row("places", 0.25, 55)])  # an interval starting at chance does not clear it
    last = findings.baseline_findings(frame, clip_model="mini", sample_model=True).splitlines()[-1]
    assert last == "- Per topic, T-I: 95% interval above chance on nature (n=99); not on countries (n=1,860), places (n=55)."


def test_subset_summary_reads_the_subset_table():
    table = pd.DataFrame([{"instances": "seen", "task": "T-I", "n": 12, "Acc@1 %": 41.04},
                          {"instances": "unseen", "task": "T-I", "n": 30, "Acc@1 %": 20.0}])
    assert findings.subset_summary(table) == "T-I 41.0% on seen (n=12); T-I 20.0% on unseen (n=30)"
    assert findings.subset_summary(table.iloc[:0]) == "no test instance in either group"

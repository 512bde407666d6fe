"""pi-check's comparisons, on real renders classified here (the emulated roots need root and
minutes per architecture: ``make pi-check`` is the end-to-end run)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from fmnist_edge.benchmarks import pi_check
from fmnist_edge.edge import dataset, photo

Answers = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def renders(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pi-check") / "renders"
    pi_check.write_renders(folder, 6)
    return folder


def _classify(folder: Path, method: str) -> Answers:
    edge_classify = str(Path(sys.executable).parent / "edge-classify")
    return pi_check.answers([edge_classify, *pi_check.classify_args(folder, "litert", method)])


@pytest.fixture(scope="module")
def default_answers(renders: Path) -> Answers:
    return _classify(renders, photo.DEFAULT_METHOD)


def test_renders_are_found_in_class_folders_with_every_class(default_answers: Answers) -> None:
    assert len(default_answers) == 6
    for record in default_answers.values():
        assert len(record["top_k"]) == len(dataset.CLASS_NAMES)


def test_same_answers_agree_and_another_pipeline_shows(default_answers: Answers,
                                                       renders: Path) -> None:
    same = pi_check.compare(default_answers, default_answers)
    assert same["agree"] and same["same_top1"] == 6 and same["max_prob_diff"] == 0.0
    # segment-3 answers the same renders from other cut-outs: the check must see that
    other = pi_check.compare(default_answers, _classify(renders, photo.FALLBACK_VERSION))
    assert other["max_prob_diff"] > 0.01


def test_a_missing_answer_or_blank_record_is_a_difference(default_answers: Answers) -> None:
    name = next(iter(default_answers))
    fewer = {k: v for k, v in default_answers.items() if k != name}
    assert not pi_check.compare(default_answers, fewer)["agree"]
    blank = {**default_answers, name: {"answer": "no garment found", "top_k": []}}
    result = pi_check.compare(default_answers, blank)
    assert not result["agree"] and result["same_top1"] == 5


def _root(arch: str, pipeline: str, agreement: dict[str, Any]) -> dict[str, Any]:
    return {"arch": arch, "backends": {"numpy": agreement}, "pipeline_version": pipeline,
            "renders": {**agreement, "pipeline_here": pipeline}, "doctor": {"exit_code": 0}}


def test_a_64_bit_root_that_fell_back_to_segment_3_fails(default_answers: Answers) -> None:
    agree = pi_check.compare(default_answers, default_answers)
    assert pi_check.all_ok([_root("arm64", photo.PIPELINE_VERSION, agree),
                            _root("armhf", photo.FALLBACK_VERSION, agree)])
    assert not pi_check.all_ok([_root("arm64", photo.FALLBACK_VERSION, agree)])

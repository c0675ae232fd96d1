"""``python -m facecore``: real runs of the command line on real photos and LFW pairs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from facecore.cli import build_parser
from facecore.detection import DETECTORS
from facecore.evaluation.datasets import BUNDLED_LFW_HOME, LFW_HOME_ENV

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facecore", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )


def test_choices_come_from_the_registries() -> None:
    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate-lfw"]  # noqa: SLF001
    detector = next(a for a in evaluate._actions if a.dest == "detector")  # noqa: SLF001
    assert list(detector.choices) == DETECTORS.names()


def test_embed_prints_one_json_line_per_face(faces_small) -> None:
    photo = faces_small["obama"][0]
    result = run_cli("embed", str(photo), "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1 and records[0]["image"] == str(photo)
    assert len(records[0]["embedding"]) == 128


def test_embed_names_an_unreadable_file_and_fails(tmp_path) -> None:
    bad = tmp_path / "not-a-photo.jpg"
    bad.write_bytes(b"hello")
    result = run_cli("embed", str(bad))
    assert result.returncode == 1
    assert "not-a-photo.jpg" in result.stderr


def test_evaluate_lfw_runs_a_small_protocol_and_ends_with_a_json_summary(lfw_source, tmp_path) -> None:
    result = run_cli(
        "evaluate-lfw", "--data-home", str(lfw_source.home), "--pairs", lfw_source.benchmark_subset, "--limit", "60",
        "--cache-dir", str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["pairs"] == 60
    assert summary["accuracy"] >= 0.9  # dlib's model on 60 pairs, balanced over the 10 folds


def test_evaluate_lfw_on_the_bundled_pack_defaults_to_its_demo_pairs(tmp_path) -> None:
    # --data-home names the pack, which has pairs_demo.txt and no pairs.txt: the default is its demo pairs.
    result = run_cli(
        "evaluate-lfw", "--data-home", str(BUNDLED_LFW_HOME), "--limit", "40", "--cache-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "the bundled mini LFW" in result.stderr
    assert result.stdout.startswith("LFW demo: 40 pairs")
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["pairs"] == 40
    assert summary["accuracy"] >= 0.9


def test_evaluate_lfw_asked_for_pairs_the_lfw_lacks_says_which_it_has(tmp_path) -> None:
    result = run_cli("evaluate-lfw", "--data-home", str(BUNDLED_LFW_HOME), "--pairs", "10_folds",
                     "--cache-dir", str(tmp_path))
    assert result.returncode == 2
    assert "has no pairs.txt, so no --pairs 10_folds; it has: demo." in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_lfw_without_lfw_in_the_data_home_says_so(tmp_path) -> None:
    empty = tmp_path / "no-lfw-here"
    empty.mkdir()
    result = run_cli("evaluate-lfw", "--data-home", str(empty), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2
    assert f"--data-home {empty} holds no LFW" in result.stderr
    assert "Traceback" not in result.stderr
    assert not result.stdout


def test_evaluate_lfw_with_a_wrong_lfw_home_variable_says_so(tmp_path) -> None:
    wrong = tmp_path / "not-lfw"
    result = run_cli(
        "evaluate-lfw", "--cache-dir", str(tmp_path / "cache"), env={**os.environ, LFW_HOME_ENV: str(wrong)}
    )
    assert result.returncode == 2
    assert f"${LFW_HOME_ENV} is {wrong}: LFW images not found" in result.stderr
    assert "Traceback" not in result.stderr

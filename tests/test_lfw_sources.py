"""Finding LFW in the documented order ($FACECORE_LFW_HOME, scikit-learn's data home, the bundled mini
LFW), the offline download message, and the rule that product code never names the shared folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facecore.evaluation import datasets as ds

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ["facecore", "ui", "app_pages", "api", "app.py"]


@pytest.fixture
def no_lfw_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv(ds.LFW_HOME_ENV, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty_sklearn_home"))
    return tmp_path


def test_the_bundled_mini_lfw_is_found_when_nothing_else_is(no_lfw_anywhere) -> None:
    source = ds.find_lfw()
    assert source.home == ds.BUNDLED_LFW_HOME and source.origin == ds.BUNDLED
    assert not source.full and source.benchmark_subset == "demo" and source.subsets == ("demo",)
    assert source.images >= 900 and source.people >= 400
    assert "bundled mini LFW" in source.describe()
    assert not (no_lfw_anywhere / "empty_sklearn_home").exists()  # looking never creates it
    pairs = ds.read_lfw_pairs(source.home, "demo")
    assert len(pairs) == 300 and not ds.missing_images(pairs)


def test_scikit_learn_data_home_comes_before_the_pack(no_lfw_anywhere) -> None:
    sk_home = no_lfw_anywhere / "sk"
    sk_home.mkdir()
    (sk_home / "lfw_home").symlink_to(ds.BUNDLED_LFW_HOME / "lfw_home", target_is_directory=True)
    os.environ["SCIKIT_LEARN_DATA"] = str(sk_home)
    source = ds.find_lfw()
    assert source.home == sk_home and source.origin == "scikit-learn data home"


def test_facecore_lfw_home_comes_first_and_a_wrong_one_is_an_error(no_lfw_anywhere, monkeypatch) -> None:
    monkeypatch.setenv(ds.LFW_HOME_ENV, str(ds.BUNDLED_LFW_HOME))
    assert ds.find_lfw().origin == ds.LFW_HOME_ENV
    monkeypatch.setenv(ds.LFW_HOME_ENV, str(no_lfw_anywhere / "nowhere"))
    with pytest.raises(FileNotFoundError, match="Expected scikit-learn's layout"):
        ds.find_lfw()


def test_download_without_internet_fails_with_a_message_for_people(tmp_path) -> None:
    closed = "http://127.0.0.1:9"  # nothing listens there: the download fails at once, with or without internet
    env = {**os.environ, "http_proxy": closed, "https_proxy": closed, "HTTP_PROXY": closed, "HTTPS_PROXY": closed}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    result = subprocess.run(
        [sys.executable, "-m", "facecore", "download-lfw", "--data-home", str(tmp_path / "lfw")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "LFW could not be downloaded" in result.stderr and "needs internet access" in result.stderr
    assert "bundled mini LFW keeps working" in result.stderr


#: Product files that could carry a path: code, and the data, notes and settings that ship with it.
PRODUCT_SUFFIXES = {".py", ".json", ".md", ".toml"}


def test_no_product_file_names_the_shared_folder() -> None:
    """Neither code nor shipped data (e.g. the commands stored in facecore/data/*.json, which the
    dashboard shows) names the shared folder or a machine's scratch space: the repository stands alone."""
    pattern = re.compile(r"\.\./shared|shared/data|/work/shared|/work/scratch|FACECORE_SHARED_DATA|parent / \"shared\"")
    files = [
        path
        for root in PRODUCT
        for path in ([REPO / root] if root.endswith(".py") else sorted((REPO / root).rglob("*")))
        if path.suffix in PRODUCT_SUFFIXES and path.is_file()
    ]
    assert {path.suffix for path in files} >= {".py", ".json"}  # the data files are among those read
    offenders = [str(path.relative_to(REPO)) for path in files if pattern.search(path.read_text(errors="replace"))]
    assert offenders == []

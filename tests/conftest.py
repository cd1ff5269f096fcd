"""Test-wide settings: never touch the network, never write outside tmp dirs."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tiny test models gain nothing from threads; one thread keeps timings steady on a busy machine
os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest


@pytest.fixture(autouse=True)
def _private_prediction_cache(tmp_path, monkeypatch):
    """Each test gets its own prediction cache folder (never the user's ~/.cache/mmbench)."""
    monkeypatch.setenv("MMBENCH_CACHE_DIR", str(tmp_path / "mmbench-cache"))

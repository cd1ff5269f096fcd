"""Test-wide settings: never touch the network, never write outside tmp dirs."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tiny test models gain nothing from threads; one thread keeps timings steady on a busy machine
os.environ.setdefault("OMP_NUM_THREADS", "1")

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# One thread: the suite also runs browsers and Ray workers beside torch, and OpenMP with more threads than idle
# cores slows down by an order of magnitude (measured on the 2-core CI machine under load).
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLE = SHARED / "samples" / "cinemagraphy-demo1"


@pytest.fixture
def sample_dir() -> Path:
    """The real photo + labelme sample; tests using it skip when ../shared is absent."""
    if not (SAMPLE / "image.jpg").exists():
        pytest.skip("../shared/samples/cinemagraphy-demo1 is not available")
    return SAMPLE


@pytest.fixture(scope="session")
def demo_input(tmp_path_factory) -> dict[str, Path]:
    from landscape4d.demo import make_demo_input

    return make_demo_input(tmp_path_factory.mktemp("demo"), 256, 144)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)

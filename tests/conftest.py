import os

import numpy as np
import pytest
import torch

from inr_utils.acquisition import simulate
from inr_utils.phantom import phantom_cine

# kernels that nbval and the notebook tests start inherit this: notebooks show static figures,
# no widgets (explorer.has_frontend)
os.environ.setdefault("INR_HEADLESS", "1")


@pytest.fixture(scope="session")
def tiny_acq():
    """A small simulated acquisition (8 frames, 32 x 32, 3 coils, R = 3)."""
    return simulate(phantom_cine(8, 32, 32, seed=1), R=3, seed=1, coils=3, noise_std=1e-3)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def case():
    """A tiny case (8 frames, 32 x 32, 2 coils, R = 4): (acquisition, its operator, k-space tensor)."""
    acq = simulate(phantom_cine(8, 32, 32, seed=2), R=4, seed=2, coils=2, noise_std=1e-3)
    return acq, acq.op, torch.from_numpy(acq.kspace)

from __future__ import annotations

from collections.abc import Callable

import pytest
from small_bills import SMALL, Bill, read_bill

from costlake.synthetic.generate import generate


@pytest.fixture(scope="session")
def small_bill(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Bill]:
    """small_bill(anomalies=12, noisy_mix=3): the SMALL bill with these options, generated once."""
    made: dict[tuple[int, int], Bill] = {}

    def make(anomalies: int = 12, noisy_mix: int = 3) -> Bill:
        key = (anomalies, noisy_mix)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"bill-{anomalies}-{noisy_mix}")
            made[key] = read_bill(generate(folder, anomalies=anomalies, noisy_mix=noisy_mix, **SMALL))
        return made[key]

    return make

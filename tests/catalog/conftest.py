"""The two-tenant lake (two_tenants.py), built once per module: the read side's tests only read."""

from __future__ import annotations

import pytest
from two_tenants import build_lake

from costlake.lake.warehouse import Warehouse


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return build_lake(tmp_path_factory.mktemp("two_tenants"))

from __future__ import annotations

from datetime import datetime

import pytest

from shared.calendar import HCMC, WorkingCalendar
from shared.catalog import Catalog, load_catalog
from shared.settings import DEFAULT_CATALOG


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


def hcmc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=HCMC)

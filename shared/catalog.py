"""The procedure catalog (thủ tục hành chính) and the units that receive and process dossiers.

Loaded from a TOML file in the repo and validated at start: a broken catalog stops the service.
"""

from __future__ import annotations

import tomllib
from datetime import time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

UnitCode = Annotated[str, Field(pattern=r"^[0-9A-Z.]{3,32}$")]


class TimeUnit(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    WORKING_HOURS = "working_hours"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Unit(_Frozen):
    """A receiving or processing unit (đơn vị); its head answers for lateness."""

    code: UnitCode
    name: str
    head_title: str
    head_email: str


class ProcessingTime(_Frozen):
    value: float = Field(gt=0, description="half days allowed, e.g. 0.5")
    unit: TimeUnit


class Step(_Frozen):
    """One step of the internal or inter-agency process (quy trình nội bộ / liên thông)."""

    unit: UnitCode
    task: str
    share: float = Field(gt=0, le=1, description="fraction of the procedure's processing time")


class Procedure(_Frozen):
    code: str = Field(pattern=r"^[0-9]\.[0-9]{6}(\.[0-9]+)?$")
    name: str
    field: str
    agency: UnitCode = Field(description="the competent unit, which answers for the result")
    processing_time: ProcessingTime
    same_day_cutoff: time | None = None
    steps: tuple[Step, ...] = Field(min_length=1)

    @property
    def is_inter_agency(self) -> bool:
        return len({step.unit for step in self.steps}) > 1

    @model_validator(mode="after")
    def _shares_cover_the_whole_time(self) -> Procedure:
        total = sum(step.share for step in self.steps)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"procedure {self.code}: step shares add up to {total}, not 1")
        return self


class Catalog(_Frozen):
    units: tuple[Unit, ...]
    procedures: tuple[Procedure, ...]

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        unit_codes = [unit.code for unit in self.units]
        if len(set(unit_codes)) != len(unit_codes):
            raise ValueError("duplicate unit codes in the catalog")
        procedure_codes = [p.code for p in self.procedures]
        if len(set(procedure_codes)) != len(procedure_codes):
            raise ValueError("duplicate procedure codes in the catalog")
        known = set(unit_codes)
        for procedure in self.procedures:
            for unit in (procedure.agency, *(step.unit for step in procedure.steps)):
                if unit not in known:
                    raise ValueError(f"procedure {procedure.code} names unknown unit {unit}")
        return self

    def procedure(self, code: str) -> Procedure | None:
        return self._procedures_by_code.get(code)

    def unit(self, code: str) -> Unit | None:
        return self._units_by_code.get(code)

    @cached_property
    def _procedures_by_code(self) -> dict[str, Procedure]:
        return {p.code: p for p in self.procedures}

    @cached_property
    def _units_by_code(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units}


def load_catalog(path: Path) -> Catalog:
    with path.open("rb") as file:
        return Catalog.model_validate(tomllib.load(file))

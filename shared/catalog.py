"""The procedure catalog (thủ tục hành chính) and the units that receive and process dossiers.

Loaded from a TOML file in the repo and validated at start: a broken catalog stops the service.
Every refusal names the procedure or unit at fault and what is wrong with it.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

UnitCode = Annotated[str, Field(pattern=r"^[0-9A-Z.]{3,32}$")]
Text = Annotated[str, Field(min_length=1)]


class TimeUnit(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    WORKING_HOURS = "working_hours"


class SharesSource(StrEnum):
    """Where a process's step shares come from."""

    PUBLISHED = "published"  # the unit's published internal process (quy trình nội bộ)
    ASSUMED = "assumed"  # our own split of the legal time, to be replaced by the published one


@dataclass(frozen=True)
class OfficeHours:
    """Working periods of one day; 07:00–11:30 and 13:30–17:00 make the legal 8-hour day.

    A working day (for processing times in working days) lasts as long as the periods add up to,
    so an agency's own hours should also add up to 8 hours."""

    periods: tuple[tuple[time, time], ...] = (
        (time(7, 0), time(11, 30)),
        (time(13, 30), time(17, 0)),
    )

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("office hours need at least one working period")
        previous_end = time.min
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"office hours are local times, without an offset: {start}")
            if not previous_end <= start < end:
                raise ValueError(f"office periods must be ordered and disjoint: {self.periods}")
            previous_end = end

    @property
    def working_day(self) -> timedelta:
        return sum((_span(start, end) for start, end in self.periods), timedelta())

    @property
    def opening(self) -> time:
        return self.periods[0][0]

    @property
    def closing(self) -> time:
        return self.periods[-1][1]


def _span(start: time, end: time) -> timedelta:
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)


def _parse_office_hours(value: object) -> object:
    """`[["07:30", "11:30"], ["13:00", "17:00"]]` (strings or TOML local times) → OfficeHours."""
    if isinstance(value, OfficeHours) or isinstance(value, dict):
        return value
    example = '[["07:30", "11:30"], ["13:00", "17:00"]]'
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"office_hours must be a list of [start, end] pairs such as {example}")
    periods = []
    for pair in value:
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"office_hours period {pair!r} is not a [start, end] pair")
        periods.append((_parse_time(pair[0]), _parse_time(pair[1])))
    return OfficeHours(periods=tuple(periods))


def _parse_time(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"office_hours: {value!r} is not a time of day such as 07:30")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Unit(_Frozen):
    """A receiving or processing unit (đơn vị); its head answers for lateness."""

    code: UnitCode
    name: Text
    head_title: Text
    head_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    office_hours: Annotated[OfficeHours, BeforeValidator(_parse_office_hours)] = Field(
        default_factory=OfficeHours,
        description="the agency's own office hours; 07:00–11:30 and 13:30–17:00 if not given",
    )


class ProcessingTime(_Frozen):
    value: float = Field(gt=0, description="half days allowed, e.g. 0.5")
    unit: TimeUnit

    @model_validator(mode="after")
    def _calendar_days_are_whole(self) -> ProcessingTime:
        if self.unit is TimeUnit.CALENDAR_DAYS and self.value != int(self.value):
            raise ValueError(f"calendar days must be a whole number, not {self.value}")
        return self

    @property
    def at_most_one_working_day(self) -> bool:
        if self.unit is TimeUnit.WORKING_DAYS:
            return self.value <= 1
        return self.unit is TimeUnit.WORKING_HOURS and self.value <= 8


class Step(_Frozen):
    """One step of the internal or inter-agency process (quy trình nội bộ / liên thông)."""

    unit: UnitCode
    task: Text
    share: float = Field(gt=0, le=1, description="fraction of the procedure's processing time")


class Procedure(_Frozen):
    code: str = Field(pattern=r"^[0-9]\.[0-9]{6}(\.[0-9]+)?$")
    name: Text
    field: Text
    agency: UnitCode = Field(description="the competent unit, which answers for the result")
    processing_time: ProcessingTime
    same_day_cutoff: time | None = None
    legal_source: Text = Field(
        description="the decision that announced the procedure or the law that sets its time"
    )
    verified: StrictBool = Field(
        description="true only if the legal source was read and says what the catalog says"
    )
    shares_source: SharesSource | None = Field(
        default=None, description="required when the process has more than one step"
    )
    steps: tuple[Step, ...] = Field(min_length=1)

    @property
    def is_inter_agency(self) -> bool:
        return len(self.step_units) > 1

    @property
    def step_units(self) -> frozenset[str]:
        """The distinct units that take part in the process."""
        return frozenset(step.unit for step in self.steps)

    @model_validator(mode="after")
    def _shares_cover_the_whole_time(self) -> Procedure:
        total = sum(step.share for step in self.steps)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"procedure {self.code}: step shares add up to {total:g}, not 1")
        return self

    @model_validator(mode="after")
    def _shares_of_several_steps_name_their_source(self) -> Procedure:
        if len(self.steps) > 1 and self.shares_source is None:
            raise ValueError(
                f"procedure {self.code}: a process of {len(self.steps)} steps needs"
                " shares_source ('published' or 'assumed')"
            )
        return self

    @model_validator(mode="after")
    def _cutoff_only_for_same_day_work(self) -> Procedure:
        if self.same_day_cutoff is None:
            return self
        if not self.processing_time.at_most_one_working_day:
            time_ = self.processing_time
            raise ValueError(
                f"procedure {self.code}: same_day_cutoff needs a processing time of at most"
                f" 1 working day (or 8 working hours), not {time_.value:g} {time_.unit.value}"
            )
        if self.same_day_cutoff.tzinfo is not None:
            raise ValueError(f"procedure {self.code}: same_day_cutoff is a local time of day")
        return self


class Catalog(_Frozen):
    units: tuple[Unit, ...]
    procedures: tuple[Procedure, ...]

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        unit_codes = [unit.code for unit in self.units]
        twice = sorted(code for code, n in Counter(unit_codes).items() if n > 1)
        if twice:
            raise ValueError(f"duplicate unit codes in the catalog: {', '.join(twice)}")
        procedure_codes = [p.code for p in self.procedures]
        twice = sorted(code for code, n in Counter(procedure_codes).items() if n > 1)
        if twice:
            raise ValueError(f"duplicate procedure codes in the catalog: {', '.join(twice)}")
        units = {unit.code: unit for unit in self.units}
        for procedure in self.procedures:
            if procedure.agency not in units:
                raise ValueError(
                    f"procedure {procedure.code} names unknown unit {procedure.agency} as agency"
                )
            for number, step in enumerate(procedure.steps, start=1):
                if step.unit not in units:
                    raise ValueError(
                        f"procedure {procedure.code} names unknown unit {step.unit}"
                        f" in step {number}"
                    )
            cutoff = procedure.same_day_cutoff
            hours = units[procedure.agency].office_hours
            if cutoff is not None and not hours.opening < cutoff <= hours.closing:
                raise ValueError(
                    f"procedure {procedure.code}: same_day_cutoff {cutoff} is outside the office"
                    f" hours of {procedure.agency} ({hours.opening}–{hours.closing})"
                )
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

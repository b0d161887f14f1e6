"""The shipped procedure catalog, and the refusal of broken ones with a message naming the fault."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.catalog import Catalog, OfficeHours, SharesSource, TimeUnit, load_catalog

FIVE_FIELDS = {
    "Đất đai",
    "Xây dựng",
    "Thành lập và hoạt động doanh nghiệp",
    "Hộ tịch",
    "Lý lịch tư pháp",
}

# The first nine procedures: other tests and the services' fixtures use their codes and steps.
ORIGINAL_PROCEDURES = {
    # Since 1 March 2025 the city police issue judicial-record certificates (README, catalog).
    "2.000488": ("000.20.01.H29", "000.20.01.H29", "000.20.01.H29"),
    "1.001193": ("000.41.01.H29",),
    "1.004873": ("000.41.02.H29",),
    "1.000894": ("000.41.01.H29",),
    "1.004227": ("000.14.01.H29", "000.30.01.H29", "000.14.01.H29"),
    "1.012790": ("000.14.01.H29", "000.41.01.H29", "000.30.01.H29", "000.00.14.H29"),
    "1.009994": ("000.00.12.H29", "000.00.14.H29", "000.00.12.H29"),
    "2.001610": ("000.00.15.H29",),
    "1.005004": ("000.41.02.H29",),
}


def test_the_shipped_catalog_has_procedures_in_every_field(catalog: Catalog) -> None:
    assert len(catalog.procedures) >= 20
    assert FIVE_FIELDS <= {procedure.field for procedure in catalog.procedures}
    assert {procedure.processing_time.unit for procedure in catalog.procedures} == set(TimeUnit)
    assert any(p.processing_time.value % 1 == 0.5 for p in catalog.procedures)


def test_the_shipped_catalog_has_inter_agency_processes(catalog: Catalog) -> None:
    inter_agency = [p for p in catalog.procedures if p.is_inter_agency]
    assert len(inter_agency) >= 5
    assert all(2 <= len(p.step_units) <= 4 for p in inter_agency)
    assert {len(p.step_units) for p in inter_agency} >= {2, 3, 4}


def test_same_day_procedures_take_at_most_a_working_day(catalog: Catalog) -> None:
    same_day = [p for p in catalog.procedures if p.same_day_cutoff is not None]
    assert len(same_day) >= 3
    assert all(p.same_day_cutoff == time(15, 0) for p in same_day)
    assert all(p.processing_time.at_most_one_working_day for p in same_day)


def test_units_have_national_codes_and_a_head(catalog: Catalog) -> None:
    for unit in catalog.units:
        assert re.fullmatch(r"000\.[0-9]{2}\.[0-9]{2}\.H29", unit.code), unit.code
        assert unit.head_title and "@" in unit.head_email


def test_office_hours_default_or_the_units_own(catalog: Catalog) -> None:
    centre = catalog.unit("000.00.00.H29")
    ward = catalog.unit("000.41.04.H29")
    assert centre is not None and ward is not None
    assert centre.office_hours == OfficeHours()
    assert ward.office_hours == OfficeHours(
        periods=((time(7, 30), time(11, 30)), (time(13, 0), time(17, 0)))
    )
    assert ward.office_hours.working_day == OfficeHours().working_day


def test_every_procedure_names_its_legal_source(catalog: Catalog) -> None:
    for procedure in catalog.procedures:
        assert procedure.legal_source.strip(), procedure.code
        if len(procedure.steps) > 1:
            assert procedure.shares_source is not None, procedure.code


def test_judicial_records_are_issued_by_the_city_police(catalog: Catalog) -> None:
    """Since 1 March 2025 the Công an Thành phố, not the Sở Tư pháp, issues the certificates."""
    police = catalog.unit("000.20.01.H29")
    assert police is not None and police.name == "Công an Thành phố Hồ Chí Minh"
    records = [p for p in catalog.procedures if p.field == "Lý lịch tư pháp"]
    assert {p.code for p in records} == {"2.000488", "2.000505", "2.000522"}
    for procedure in records:
        assert procedure.agency == police.code, procedure.code
        assert procedure.step_units == {police.code}, procedure.code
        assert procedure.shares_source is SharesSource.ASSUMED


def test_the_readme_lists_every_unverified_procedure(catalog: Catalog) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The catalog's legal sources", 1)[1].split("\n## ", 1)[0]
    unverified = section.split("Unverified (", 1)[1]
    listed = set(re.findall(r"\b[12]\.[0-9]{6}\b", unverified))
    assert listed == {p.code for p in catalog.procedures if not p.verified}


def test_marital_status_is_confirmed_in_working_days(catalog: Catalog) -> None:
    """Nghị định 123/2015/NĐ-CP, Điều 22: 03 ngày làm việc, not calendar days."""
    procedure = catalog.procedure("1.005004")
    assert procedure is not None and procedure.verified
    assert procedure.processing_time.value == 3
    assert procedure.processing_time.unit is TimeUnit.WORKING_DAYS


def test_a_several_step_process_loads_with_its_shares_source(tmp_path: Path) -> None:
    text = UNITS + procedure(
        steps=TWO_STEPS,
        sources='legal_source = "Luật Hộ tịch 2014"\nverified = true\n'
        'shares_source = "published"\n',
    )
    loaded = load(tmp_path, text).procedure("2.000815")
    assert loaded is not None and loaded.verified
    assert loaded.shares_source is SharesSource.PUBLISHED


def test_the_original_procedures_keep_their_codes_and_steps(catalog: Catalog) -> None:
    for code, units in ORIGINAL_PROCEDURES.items():
        procedure = catalog.procedure(code)
        assert procedure is not None, code
        assert tuple(step.unit for step in procedure.steps) == units


UNITS = """
[[units]]
code = "000.00.05.H29"
name = "Sở Tư pháp"
head_title = "Giám đốc Sở Tư pháp"
head_email = "giamdoc.stp@tphcm.gov.vn"

[[units]]
code = "000.41.01.H29"
name = "Ủy ban nhân dân phường Sài Gòn"
head_title = "Chủ tịch UBND phường Sài Gòn"
head_email = "chutich.psaigon@tphcm.gov.vn"
"""


def procedure(
    code: str = "2.000815",
    agency: str = "000.41.01.H29",
    time_: str = '{ value = 1, unit = "working_days" }',
    cutoff: str | None = None,
    steps: str = '[{ unit = "000.41.01.H29", task = "Chứng thực", share = 1.0 }]',
    sources: str = 'legal_source = "Nghị định 23/2015/NĐ-CP, Điều 7"\nverified = false\n',
) -> str:
    cutoff_line = f'same_day_cutoff = "{cutoff}"\n' if cutoff else ""
    return f"""
[[procedures]]
code = "{code}"
name = "Chứng thực bản sao từ bản chính"
field = "Chứng thực"
agency = "{agency}"
processing_time = {time_}
{cutoff_line}{sources}steps = {steps}
"""


TWO_STEPS = (
    '[{ unit = "000.41.01.H29", task = "Kiểm tra", share = 0.6 },'
    ' { unit = "000.00.05.H29", task = "Ký", share = 0.4 }]'
)


def load(tmp_path: Path, text: str) -> Catalog:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return load_catalog(path)


def test_a_small_valid_catalog_loads(tmp_path: Path) -> None:
    catalog = load(tmp_path, UNITS + procedure(cutoff="15:00:00"))
    assert catalog.procedure("2.000815") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            UNITS + procedure(agency="000.41.99.H29"),
            "procedure 2.000815 names unknown unit 000.41.99.H29 as agency",
            id="unknown agency",
        ),
        pytest.param(
            UNITS
            + procedure(steps='[{ unit = "000.41.77.H29", task = "Chứng thực", share = 1.0 }]'),
            "procedure 2.000815 names unknown unit 000.41.77.H29 in step 1",
            id="unknown step unit",
        ),
        pytest.param(
            UNITS
            + procedure(
                steps='[{ unit = "000.41.01.H29", task = "Kiểm tra", share = 0.5 },'
                ' { unit = "000.00.05.H29", task = "Ký", share = 0.4 }]',
                sources='legal_source = "x"\nverified = false\nshares_source = "assumed"\n',
            ),
            "procedure 2.000815: step shares add up to 0.9, not 1",
            id="shares not adding to 1",
        ),
        pytest.param(
            UNITS + procedure(sources="verified = true\n"),
            "legal_source\n  Field required",
            id="no legal source",
        ),
        pytest.param(
            UNITS + procedure(sources='legal_source = ""\nverified = true\n'),
            "legal_source\n  String should have at least 1 character",
            id="empty legal source",
        ),
        pytest.param(
            UNITS + procedure(sources='legal_source = "Luật Hộ tịch 2014"\n'),
            "verified\n  Field required",
            id="no verified flag",
        ),
        pytest.param(
            UNITS + procedure(sources='legal_source = "Luật Hộ tịch 2014"\nverified = "yes"\n'),
            "verified\n  Input should be a valid boolean",
            id="verified not a boolean",
        ),
        pytest.param(
            UNITS + procedure(steps=TWO_STEPS),
            "procedure 2.000815: a process of 2 steps needs shares_source"
            " ('published' or 'assumed')",
            id="several steps without shares_source",
        ),
        pytest.param(
            UNITS
            + procedure(
                steps=TWO_STEPS,
                sources='legal_source = "x"\nverified = false\nshares_source = "guessed"\n',
            ),
            "shares_source\n  Input should be 'published' or 'assumed'",
            id="unknown shares_source",
        ),
        pytest.param(
            UNITS + procedure() + procedure(),
            "duplicate procedure codes in the catalog: 2.000815",
            id="duplicate procedure code",
        ),
        pytest.param(
            UNITS + UNITS + procedure(),
            "duplicate unit codes in the catalog: 000.00.05.H29, 000.41.01.H29",
            id="duplicate unit code",
        ),
        pytest.param(
            UNITS + procedure(time_='{ value = 5, unit = "working_days" }', cutoff="15:00:00"),
            "procedure 2.000815: same_day_cutoff needs a processing time of at most 1 working day",
            id="cutoff with a long processing time",
        ),
        pytest.param(
            UNITS + procedure(time_='{ value = 3, unit = "calendar_days" }', cutoff="15:00:00"),
            "same_day_cutoff needs a processing time of at most 1 working day",
            id="cutoff with calendar days",
        ),
        pytest.param(
            UNITS + procedure(cutoff="18:00:00"),
            "procedure 2.000815: same_day_cutoff 18:00:00 is outside the office hours of"
            " 000.41.01.H29",
            id="cutoff after closing",
        ),
        pytest.param(
            UNITS + procedure(cutoff="3pm"),
            "same_day_cutoff",
            id="cutoff not a time",
        ),
        pytest.param(
            UNITS + procedure(time_='{ value = 2.5, unit = "calendar_days" }'),
            "calendar days must be a whole number, not 2.5",
            id="half calendar day",
        ),
        pytest.param(
            UNITS + procedure(time_='{ value = 0, unit = "working_days" }'),
            "greater than 0",
            id="zero processing time",
        ),
        pytest.param(
            UNITS + procedure(steps="[]"),
            "at least 1 item",
            id="no steps",
        ),
        pytest.param(
            UNITS + procedure(code="1.4227"),
            "String should match pattern",
            id="malformed procedure code",
        ),
        pytest.param(
            UNITS.replace('head_email = "giamdoc.stp@tphcm.gov.vn"', 'head_email = "giamdoc"')
            + procedure(),
            "head_email",
            id="bad head email",
        ),
        pytest.param(
            UNITS.replace(
                'head_email = "giamdoc.stp@tphcm.gov.vn"',
                'head_email = "giamdoc.stp@tphcm.gov.vn"\n'
                'office_hours = [["13:00", "17:00"], ["07:30", "11:30"]]',
            )
            + procedure(),
            "office periods must be ordered and disjoint",
            id="office hours out of order",
        ),
        pytest.param(
            UNITS.replace(
                'head_email = "giamdoc.stp@tphcm.gov.vn"',
                'head_email = "giamdoc.stp@tphcm.gov.vn"\noffice_hours = [["07:30", "noon"]]',
            )
            + procedure(),
            "'noon' is not a time of day",
            id="office hours not times",
        ),
        pytest.param(
            UNITS.replace(
                'head_email = "giamdoc.stp@tphcm.gov.vn"',
                'head_email = "giamdoc.stp@tphcm.gov.vn"\noffice_hours = []',
            )
            + procedure(),
            "office hours need at least one working period",
            id="no office hours",
        ),
        pytest.param(
            UNITS + procedure().replace('field = "Chứng thực"', 'field = "Chứng thực"\nfee = 0'),
            "Extra inputs are not permitted",
            id="unknown key",
        ),
    ],
)
def test_a_broken_catalog_is_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        load(tmp_path, text)


def test_a_cutoff_is_checked_against_the_agencys_own_hours(tmp_path: Path) -> None:
    early_closing = UNITS.replace(
        'head_email = "chutich.psaigon@tphcm.gov.vn"',
        'head_email = "chutich.psaigon@tphcm.gov.vn"\n'
        'office_hours = [["07:30", "11:30"], ["13:00", "14:30"]]',
    )
    with pytest.raises(ValidationError, match="outside the office hours"):
        load(tmp_path, early_closing + procedure(cutoff="15:00:00"))


def test_office_hours_accept_toml_times(tmp_path: Path) -> None:
    text = UNITS.replace(
        'head_email = "giamdoc.stp@tphcm.gov.vn"',
        'head_email = "giamdoc.stp@tphcm.gov.vn"\n'
        "office_hours = [[07:30:00, 11:30:00], [13:00:00, 17:00:00]]",
    )
    unit = load(tmp_path, text + procedure()).unit("000.00.05.H29")
    assert unit is not None
    assert unit.office_hours.opening == time(7, 30)
    assert unit.office_hours.closing == time(17, 0)

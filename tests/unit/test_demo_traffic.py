"""The demo's traffic model for consultations, and its per-unit table (no I/O)."""

from __future__ import annotations

import random
from datetime import timedelta

from deploy.local.demo.options import parse_options
from deploy.local.demo.report import duties
from deploy.local.demo.traffic import (
    START,
    UNIT_TRAITS,
    Dossier,
    Fate,
    Move,
    decide_consultation,
    decide_send_back,
    traits,
)
from shared.calendar import WorkingCalendar
from shared.catalog import Procedure, load_catalog
from shared.settings import DEFAULT_CATALOG

CATALOG = load_catalog(DEFAULT_CATALOG)
OPTIONS = parse_options([])
STEP = timedelta(minutes=30)


def inter_agency(code: str = "1.012790") -> Procedure:
    return next(p for p in CATALOG.procedures if p.code == code)


def dossier(consulted: tuple[str, ...], step_days: float = 3) -> Dossier:
    calendar = WorkingCalendar()
    procedure = inter_agency()
    d = Dossier(
        code="X",
        desk=procedure.agency,
        procedure=procedure,
        fate=Fate(consulted=consulted),
        rng=random.Random(1),
        calendar=calendar,
    )
    step_due = calendar.add_working_time(START, timedelta(hours=8 * step_days))
    due = calendar.add_working_time(START, timedelta(hours=8 * 10))
    d.clock = {
        "due_at": due.isoformat(),
        "steps": [{"unit_code": s.unit, "due_at": step_due.isoformat()} for s in procedure.steps],
    }
    d.begin_step(START)
    return d


def test_a_consultation_names_other_units_of_the_process_once_each() -> None:
    procedure = inter_agency()
    for seed in range(200):
        consulted = decide_consultation(random.Random(seed), procedure, OPTIONS)
        assert len(set(consulted)) == len(consulted) <= 2
        assert procedure.steps[0].unit not in consulted
        assert set(consulted) <= procedure.step_units


def test_the_traits_mark_late_repliers_and_a_unit_that_ignores_due_soon() -> None:
    assert any(t.replies_late for t in UNIT_TRAITS.values())
    assert any(t.ignores_due_soon for t in UNIT_TRAITS.values())
    assert traits("no-such-unit") == traits("000.00.00.H29")  # the default: neither


def test_the_first_unit_consults_early_then_waits_for_the_replies_within_its_step() -> None:
    late_unit = next(code for code, t in UNIT_TRAITS.items() if t.replies_late)
    d = dossier(("000.30.01.H29", late_unit))
    when, move = d.next_move(STEP)
    assert move is Move.CONSULT and when < d.step_due()
    body = d.request(move)
    assert body is not None and body["reply_working_days"] == 1  # a third of the step's 3 days
    d.record(move, when)
    reply_due = d.calendar.add_working_time(when, timedelta(hours=8))
    d.plan_replies(
        [
            {"consultation_id": 1, "unit_code": "000.30.01.H29", "reply_due_at": str(reply_due)},
            {"consultation_id": 2, "unit_code": late_unit, "reply_due_at": str(reply_due)},
        ],
        when,
        STEP,
    )
    on_time, late = d.replies
    assert on_time.at <= reply_due - STEP and not on_time.late
    assert late.late
    finish, move = d.next_move(STEP)
    assert move is Move.HAND_OFF and late.at < finish < d.step_due()


def test_no_consultation_in_a_step_shorter_than_a_working_day() -> None:
    d = dossier(("000.30.01.H29",), step_days=0.5)
    assert d.next_move(STEP)[1] is Move.HAND_OFF


def test_the_table_merges_apologies_per_competent_unit_and_replies_per_consulted_unit() -> None:
    indicators = {
        "units": [
            {"unit_code": "A", "unit_name": "a", "apologies_on_time": 2, "apologies_late": 1,
             "apologies_missing": 0},
            {"unit_code": "C", "unit_name": "c", "apologies_on_time": 0, "apologies_late": 0,
             "apologies_missing": 0},
        ]
    }  # fmt: skip
    board = {
        "units": [
            {"unit_code": "A", "unit_name": "a", "replies_late": 0, "replies_awaited_past_due": 0},
            {"unit_code": "B", "unit_name": "b", "replies_late": 3, "replies_awaited_past_due": 1},
        ]
    }
    table = duties(indicators, board)
    assert [row["unit_code"] for row in table["units"]] == ["A", "B"]  # C has nothing to show
    assert table["units"][0]["apologies_late"] == 1 and table["units"][1]["replies_late"] == 3
    assert table["total"] == {
        "apologies_on_time": 2,
        "apologies_late": 1,
        "apologies_missing": 0,
        "replies_late": 3,
        "replies_awaited_past_due": 1,
    }


def test_the_branches_of_a_parallel_group_are_handed_on_one_after_the_other() -> None:
    procedure = inter_agency("1.012941")  # steps 2 and 3 side by side, then step 4 joins
    d = dossier(())
    d.procedure = procedure
    d.clock["steps"] = [
        {"unit_code": s.unit, "due_at": d.clock["steps"][0]["due_at"]} for s in procedure.steps
    ]
    d.record(Move.HAND_OFF, START)
    assert (d.step, d.stage, d.expected) == (2, (2, 3), ("running", 2))
    assert d.request(Move.HAND_OFF) == {"to_unit_code": procedure.steps[3].unit}
    fork = d.step_started
    d.record(Move.HAND_OFF, START + timedelta(hours=1))
    # Branch 3 ran from the fork; the clock's current step stays 2 until the join.
    assert (d.step, d.step_started, d.expected, d.completed) == (3, fork, ("running", 2), 2)
    d.completed = None
    d.record(Move.HAND_OFF, START + timedelta(hours=2))
    assert (d.step, d.expected, d.last_stage) == (4, ("running", 4), True)
    assert d.next_move(STEP)[1] is Move.RESULT


def test_a_send_back_returns_to_the_lone_step_before_once() -> None:
    for seed in range(200):
        for procedure in (inter_agency("1.012941"), inter_agency("1.012790")):
            step = decide_send_back(random.Random(seed), procedure, OPTIONS)
            if step is not None:
                assert step >= 2 and procedure.steps[step - 1].parallel is None
                assert procedure.steps[step - 2].parallel is None
    d = dossier(())
    d.fate = Fate(send_back=2)
    d.record(Move.HAND_OFF, START)
    when, move = d.next_move(STEP)
    assert move is Move.SEND_BACK and d.request(move) == {
        "to_step_sequence": 1,
        "reason": "Kết quả bước trước chưa đầy đủ, đề nghị bổ sung ý kiến thẩm định",
    }
    d.record(move, when)
    assert (d.step, d.step_started, d.expected) == (1, when, ("running", 1))
    d.record(Move.HAND_OFF, when + timedelta(hours=1))
    assert d.next_move(STEP)[1] is Move.HAND_OFF  # not sent back twice

"""The portal's states: what is allowed when, and the message a refusal carries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.calendar import HCMC
from shared.events import DossierStatus as S
from shared.events import Timeliness
from shared.lifecycle import Action, IllegalTransition, allowed_actions, apply, timeliness
from tests.unit.conftest import hcmc


@pytest.mark.parametrize(
    ("status", "action", "after"),
    [
        (S.PROCESSING, Action.HAND_OFF, S.PROCESSING),
        (S.ACCEPTED, Action.REQUEST_SUPPLEMENT, S.SUPPLEMENT_REQUESTED),
        (S.PROCESSING, Action.REQUEST_SUPPLEMENT, S.SUPPLEMENT_REQUESTED),
        (S.SUPPLEMENT_REQUESTED, Action.RECEIVE_SUPPLEMENT, S.PROCESSING),
        (S.PROCESSING, Action.REQUEST_FINANCIAL_OBLIGATION, S.FINANCIAL_OBLIGATION_REQUESTED),
        (S.FINANCIAL_OBLIGATION_REQUESTED, Action.FULFIL_FINANCIAL_OBLIGATION, S.PROCESSING),
        (S.PROCESSING, Action.REQUEST_EXTENSION, S.PROCESSING),
        (S.PROCESSING, Action.MARK_RESULT_READY, S.PROCESSED),
        (S.PROCESSED, Action.RETURN_RESULT, S.RESULT_RETURNED),
        (S.SUPPLEMENT_REQUESTED, Action.WITHDRAW, S.WITHDRAWN),
        (S.SUPPLEMENT_REQUESTED, Action.REFUSE, S.REFUSED),
        (S.FINANCIAL_OBLIGATION_REQUESTED, Action.STOP_PROCESSING, S.PROCESSING_STOPPED),
    ],
)
def test_allowed_transitions(status: S, action: Action, after: S) -> None:
    assert apply(status, action) is after


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.ACCEPTED, Action.HAND_OFF),  # not routed yet
        (S.SUPPLEMENT_REQUESTED, Action.HAND_OFF),
        (S.SUPPLEMENT_REQUESTED, Action.REQUEST_SUPPLEMENT),
        (S.PROCESSING, Action.RECEIVE_SUPPLEMENT),
        (S.PROCESSING, Action.RETURN_RESULT),
        (S.PROCESSED, Action.WITHDRAW),
        (S.RESULT_RETURNED, Action.REFUSE),
        (S.WITHDRAWN, Action.HAND_OFF),
    ],
)
def test_illegal_transitions_name_the_state_and_what_is_allowed(status: S, action: Action) -> None:
    with pytest.raises(IllegalTransition) as refused:
        apply(status, action)
    message = str(refused.value)
    assert status.name.lower() in message
    assert f"status {int(status)}" in message
    for allowed in allowed_actions(status):
        assert allowed in message


def test_closed_states_allow_nothing() -> None:
    for status in (S.REFUSED, S.WITHDRAWN, S.PROCESSING_STOPPED, S.RESULT_RETURNED):
        assert allowed_actions(status) == []
        with pytest.raises(IllegalTransition, match="closed"):
            apply(status, Action.WITHDRAW)


@pytest.mark.parametrize(
    ("finished", "verdict"),
    [
        (hcmc(2026, 12, 3, 16, 0), Timeliness.EARLY),  # the day before
        (hcmc(2026, 12, 4, 8, 0), Timeliness.ON_TIME),  # the due date, before the due time
        (hcmc(2026, 12, 4, 9, 30), Timeliness.ON_TIME),  # exactly at the due time
        (hcmc(2026, 12, 4, 9, 31), Timeliness.LATE),
    ],
)
def test_early_on_time_late(finished: object, verdict: Timeliness) -> None:
    due = hcmc(2026, 12, 4, 9, 30)
    assert timeliness(finished, due, HCMC) is verdict  # type: ignore[arg-type]
    assert timeliness(due + timedelta(days=1), due, HCMC) is Timeliness.LATE

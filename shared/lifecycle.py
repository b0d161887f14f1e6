"""The dossier's lifecycle, with the national portal's states: which action is allowed in
which state, and where it leads. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum

from shared.events import DossierStatus as S
from shared.events import Timeliness


class Action(StrEnum):
    HAND_OFF = "hand_off"
    REQUEST_SUPPLEMENT = "request_supplement"
    RECEIVE_SUPPLEMENT = "receive_supplement"
    REQUEST_FINANCIAL_OBLIGATION = "request_financial_obligation"
    FULFIL_FINANCIAL_OBLIGATION = "fulfil_financial_obligation"
    REQUEST_EXTENSION = "request_extension"
    MARK_RESULT_READY = "mark_result_ready"
    RETURN_RESULT = "return_result"
    WITHDRAW = "withdraw"
    REFUSE = "refuse"
    STOP_PROCESSING = "stop_processing"


OPEN = frozenset(
    {S.ACCEPTED, S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.FINANCIAL_OBLIGATION_REQUESTED}
)

# action: (states it is allowed in, the state it leads to; None keeps the state)
TRANSITIONS: dict[Action, tuple[frozenset[S], S | None]] = {
    Action.HAND_OFF: (frozenset({S.PROCESSING}), None),
    Action.REQUEST_SUPPLEMENT: (frozenset({S.ACCEPTED, S.PROCESSING}), S.SUPPLEMENT_REQUESTED),
    Action.RECEIVE_SUPPLEMENT: (frozenset({S.SUPPLEMENT_REQUESTED}), S.PROCESSING),
    Action.REQUEST_FINANCIAL_OBLIGATION: (
        frozenset({S.PROCESSING}),
        S.FINANCIAL_OBLIGATION_REQUESTED,
    ),
    Action.FULFIL_FINANCIAL_OBLIGATION: (
        frozenset({S.FINANCIAL_OBLIGATION_REQUESTED}),
        S.PROCESSING,
    ),
    Action.REQUEST_EXTENSION: (frozenset({S.PROCESSING}), None),
    Action.MARK_RESULT_READY: (frozenset({S.PROCESSING}), S.PROCESSED),
    Action.RETURN_RESULT: (frozenset({S.PROCESSED}), S.RESULT_RETURNED),
    Action.WITHDRAW: (OPEN, S.WITHDRAWN),
    Action.REFUSE: (OPEN, S.REFUSED),
    Action.STOP_PROCESSING: (
        frozenset({S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.FINANCIAL_OBLIGATION_REQUESTED}),
        S.PROCESSING_STOPPED,
    ),
}


class IllegalTransition(Exception):
    def __init__(self, status: S, action: Action) -> None:
        self.status = status
        self.action = action
        self.allowed = allowed_actions(status)
        allowed = ", ".join(self.allowed) or "nothing: the dossier is closed"
        super().__init__(
            f"cannot {action.value.replace('_', ' ')}: the dossier is {status.name.lower()}"
            f" (status {int(status)}); allowed now: {allowed}"
        )


def allowed_actions(status: S) -> list[str]:
    return [action.value for action, (sources, _) in TRANSITIONS.items() if status in sources]


def apply(status: S, action: Action) -> S:
    """The state after `action`, or IllegalTransition naming what is allowed instead."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition(status, action)
    return target or status


def timeliness(finished_at: datetime, due_at: datetime, tz: tzinfo) -> Timeliness:
    """Early before the due date, on time on the due date (by its due time), late after."""
    if finished_at > due_at:
        return Timeliness.LATE
    if finished_at.astimezone(tz).date() == due_at.astimezone(tz).date():
        return Timeliness.ON_TIME
    return Timeliness.EARLY

"""`make run`'s restart rules: backoff while a service keeps dying, reset once it stayed up."""

from __future__ import annotations

import signal

from deploy.local.supervisor import STABLE_AFTER, Supervised, describe_exit, restart_delay


def test_the_delay_doubles_from_one_second_up_to_thirty() -> None:
    assert [restart_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_service_that_stayed_up_a_while_starts_the_backoff_again() -> None:
    state = Supervised()
    assert [state.died(lived=2.0) for _ in range(4)] == [1, 2, 4, 8]
    assert state.died(lived=STABLE_AFTER + 1) == 1
    assert state.died(lived=0.5) == 2


def test_exits_are_named_by_code_or_signal() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"

"""The rendering worker: lays out and signs the PDF of each issued apology, off the
handlers' transactions, so that an overdue alert and the letter's issue never wait for it.

A round claims a batch of letters whose PDF is pending (FOR UPDATE SKIP LOCKED: several
notifier instances share the work, none renders a letter another holds), renders and signs
each, and stores the PDFs in the same transaction. A crash mid-round rolls the claim back: the
letters are rendered again, by this instance after its restart or by another. A letter that
fails to render is retried later (exponential backoff), without holding up the others.
Delivery (delivery.py) takes a letter only once its signed PDF is stored.

Layout (fpdf2, fontTools subsetting) is CPU-bound: it runs in a process pool so that it neither
blocks the event loop nor leaves the second core idle. The pool holds some 100 MB (the layout's
libraries): it starts with the first letter to lay out and stops after `process_idle_seconds`
without one, and starts again with the next (a second or two more for that letter)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from services.notifier.delivery import failure_pause
from services.notifier.layout_process import die_with_parent, layout_pdf
from services.notifier.repository import LetterToRender, NotifierUnitOfWork
from shared.messaging.loops import stop_if_cancelled

logger = logging.getLogger(__name__)


class PdfSigner(Protocol):
    async def sign(self, pdf: bytes, signer: str, *, reason: str) -> bytes: ...


async def signed_pdf(
    letter: LetterToRender, signer: PdfSigner, executor: Executor | None = None
) -> bytes:
    """The letter laid out (in `executor`, if given) and signed with its signer's
    certificate: the unit's, or the city's when it issued the letter on the unit's behalf."""
    if executor is None:
        pdf = layout_pdf(letter.letter)
    else:
        pdf = await asyncio.get_running_loop().run_in_executor(executor, layout_pdf, letter.letter)
    return await signer.sign(pdf, letter.signed_by, reason=f"Mẫu 04 {letter.letter_number}")


def render_retry_at(
    attempts: int, now: datetime, initial: timedelta, maximum: timedelta
) -> datetime:
    """After the `attempts`-th failed render: initial * 2^(attempts-1), capped."""
    doublings: int = 2 ** min(max(attempts - 1, 0), 32)
    return now + min(maximum, initial * doublings)


class LetterRenderer:
    def __init__(
        self,
        unit_of_work: Callable[[], NotifierUnitOfWork],
        clock: Callable[[], datetime],
        signer: PdfSigner,
        *,
        batch_size: int = 20,
        processes: int = 0,
        process_idle_seconds: float = 300.0,
        poll_interval: float = 0.5,
        backoff_initial: timedelta = timedelta(seconds=5),
        backoff_max: timedelta = timedelta(minutes=10),
        max_backoff: float = 30.0,
        meter: Meter | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._signer = signer
        self._batch_size = batch_size
        self._processes = processes
        self._process_idle_seconds = process_idle_seconds
        self._last_layout = 0.0  # time.monotonic() of the last round that claimed letters
        self._poll_interval = poll_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_backoff = max_backoff
        self._executor: Executor | None = None
        self._pending: int | None = None
        if meter is not None:
            meter.create_observable_gauge(
                "onestop.letters.render_pending",
                callbacks=[self._observe_pending],
                unit="{letter}",
                description="Issued apology letters whose signed PDF is not yet rendered",
            )

    def _observe_pending(self, _: CallbackOptions) -> Iterable[Observation]:
        if self._pending is not None:
            yield Observation(self._pending)

    async def run(self) -> None:
        failures = 0
        try:
            while True:
                try:
                    rendered = await self.render_due()
                    self.stop_layout_if_idle()
                    failures = 0
                    pause = 0.0 if rendered >= self._batch_size else self._poll_interval
                except Exception as error:
                    stop_if_cancelled()
                    failures += 1
                    pause = failure_pause(failures, self._poll_interval, self._max_backoff)
                    logger.warning(
                        "rendering round failed",
                        extra={"error": type(error).__name__, "retry_in_s": round(pause, 2)},
                    )
                await asyncio.sleep(pause)
        finally:
            self._stop_layout()

    @property
    def layout_running(self) -> bool:
        """Whether the layout processes are up (tests)."""
        return self._executor is not None

    def _layout_executor(self) -> Executor | None:
        """The layout processes, started if needed (none with `processes=0`). Even an idle
        pool costs: creating it starts multiprocessing's resource tracker process."""
        if self._processes > 0 and self._executor is None:
            # spawn: the service's threads (Kafka, telemetry) must not be forked
            self._executor = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
            )
        return self._executor

    def stop_layout_if_idle(self) -> None:
        """Stops the layout processes after `process_idle_seconds` without a letter to lay out:
        apologies come in bursts, and between them the processes would hold their memory."""
        if time.monotonic() - self._last_layout >= self._process_idle_seconds:
            self._stop_layout()

    def _stop_layout(self) -> None:
        if self._executor is not None:
            # waits for at most the one layout in flight: none is left behind
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def render_due(self) -> int:
        """One round: renders, signs and stores up to a batch of pending letters in one
        transaction. Returns how many were claimed (rendered or not)."""
        async with self._unit_of_work() as uow:
            now = self._clock()
            letters = await uow.notices.claim_letters_to_render(now, self._batch_size)
            executor = self._layout_executor() if letters else None
            if letters:
                self._last_layout = time.monotonic()
            for letter in letters:
                try:
                    pdf = await signed_pdf(letter, self._signer, executor)
                except Exception as error:
                    stop_if_cancelled()  # the claim rolls back: rendered after the restart
                    attempts = letter.render_attempts + 1
                    retry_at = render_retry_at(
                        attempts, now, self._backoff_initial, self._backoff_max
                    )
                    await uow.notices.render_failed(
                        letter.dossier_code, type(error).__name__, retry_at
                    )
                    logger.error(
                        "apology letter not rendered; will retry",
                        extra={
                            "dossier_code": letter.dossier_code,
                            "attempts": attempts,
                            "error": type(error).__name__,
                        },
                    )
                    continue
                await uow.notices.letter_rendered(letter.dossier_code, pdf)
            self._pending = await uow.notices.letters_to_render()
            await uow.commit()
        return len(letters)

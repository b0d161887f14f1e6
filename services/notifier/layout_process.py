"""What the notifier's rendering process runs (rendering.py's process pool). A spawned process
imports only what the functions it is given need: this module is kept light, and the layout's
libraries (fpdf2, fontTools) are loaded by the first letter."""

from __future__ import annotations

import ctypes
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In a layout process: the kernel stops it when the service's process dies, however it
    dies (PR_SET_PDEATHSIG), so that no layout process outlives its service."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def layout_pdf(letter: dict[str, Any]) -> bytes:
    """The letter's unsigned PDF from its stored record."""
    from services.notifier.letters import ApologyLetter, render_pdf

    return render_pdf(ApologyLetter.model_validate(letter))

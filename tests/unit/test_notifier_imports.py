"""The notifier's process stays light: the PDF layout's libraries (fpdf2, fontTools, numpy,
some 40 MB) and pyHanko's (some 17 MB) are loaded by the first letter that needs them, and the
rendering process loads only the layout. Each import runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fpdf", "fontTools", "numpy", "pyhanko")


def loaded_after(statement: str) -> set[str]:
    """The top-level packages of HEAVY that a fresh interpreter holds after `statement`."""
    probe = f"{statement}\nimport sys\nprint(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(output.split()) & set(HEAVY)


def test_the_notifier_service_imports_no_pdf_nor_signing_library() -> None:
    assert loaded_after("import services.notifier.main") == set()


def test_the_rendering_process_starts_with_none_of_them() -> None:
    # what a spawned layout process imports: its main module again, and the pool's functions
    assert (
        loaded_after("import services.notifier.__main__, services.notifier.layout_process") == set()
    )


def test_laying_out_a_letter_loads_the_layout_but_not_the_signer() -> None:
    statement = (
        "from tests.unit.test_letters import sample_letter\n"
        "from services.notifier.layout_process import layout_pdf\n"
        "layout_pdf(sample_letter().model_dump(mode='json'))"
    )
    assert loaded_after(statement) == {"fpdf", "fontTools", "numpy"}

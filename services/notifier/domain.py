"""What the notifier owes a dossier. Pure, no I/O."""

from __future__ import annotations

from shared.catalog import Catalog
from shared.events import ApologyObligationRecorded, DossierClockStarted


def apology_obligation(clock: DossierClockStarted, catalog: Catalog) -> ApologyObligationRecorded:
    """An apology is owed no later than the due-soon time if the dossier is not done by then;
    the head of the responsible unit signs it."""
    unit = catalog.unit(clock.responsible_unit_code)
    signer = unit.head_title if unit is not None else "Thủ trưởng đơn vị"
    return ApologyObligationRecorded(
        dossier_code=clock.dossier_code,
        responsible_unit_code=clock.responsible_unit_code,
        signer_title=signer,
        apology_due_by=clock.due_soon_at,
        due_at=clock.due_at,
    )

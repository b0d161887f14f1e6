"""Digital signatures on apology letters (Mẫu 04, Thông tư 01/2018/TT-VPCP): a PAdES
signature (pyHanko) with the certificate of the unit whose head approved the letter, or the
city's when the city issued it on the unit's behalf. The keys are files in one directory
(deploy/local/signing.py makes a test CA's; production mounts the units' own)."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyhanko.sign import signers

# pyHanko (some 17 MB) is imported on the first signature: most
# notifier processes never sign a letter.

CITY = "city"  # the city's signer, as deploy/local/signing.py names it


class SignerMissing(Exception):
    """No certificate and key for this signer in the signing directory."""


class LetterSigner:
    """Signs PDFs as `signers/<name>/{cert,key}.pem`, the chain up to `ca.pem`."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def sign(self, pdf: bytes, signer: str, *, reason: str) -> bytes:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers
        from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata

        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        metadata = PdfSignatureMetadata(
            field_name="Signature",
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            reason=reason,
            location="Thành phố Hồ Chí Minh",
        )
        output: io.BytesIO = await signers.async_sign_pdf(
            writer, metadata, signer=self._signer(signer)
        )
        return output.getvalue()

    def _signer(self, name: str) -> signers.SimpleSigner:
        return _load(self._directory, name)


@cache
def _load(directory: Path, name: str) -> signers.SimpleSigner:
    from pyhanko.sign import signers

    folder = directory / "signers" / name
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not (cert.exists() and key.exists()):
        raise SignerMissing(
            f"no signing certificate for {name} in {directory}"
            " (run: python -m deploy.local.signing)"
        )
    signer: signers.SimpleSigner | None = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
        key_file=str(key), cert_file=str(cert), ca_chain_files=(str(directory / "ca.pem"),)
    )
    if signer is None:
        raise SignerMissing(f"the certificate or key of {name} in {directory} does not load")
    return signer

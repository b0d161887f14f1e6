"""The operators' CustomResourceDefinitions that tests/unit/test_k8s.py validates deploy/k8s
against, fetched by `make install` (never by the tests) from the Go module proxy, pinned by
version and checksum: the proxy serves each operator's source, whose config/crd/bases holds
the CRDs it installs.

Strimzi's CRDs are in no registry this project may use (Maven Central's io.strimzi:api jars
hold the Java model, not the YAML): its resources get a structural test instead.

    python -m deploy.tools.crds      # into .cache/k8s/crds; does nothing when already there
"""

from __future__ import annotations

import hashlib
import io
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

DESTINATION = Path(__file__).resolve().parents[2] / ".cache" / "k8s" / "crds"
PROXY = "https://proxy.golang.org"


@dataclass(frozen=True)
class Source:
    module: str
    version: str
    sha256: str  # of the proxy's zip
    files: tuple[str, ...]  # under config/crd/bases

    @property
    def url(self) -> str:
        return f"{PROXY}/{self.module}/@v/{self.version}.zip"


SOURCES = (
    Source(
        "github.com/cloudnative-pg/cloudnative-pg",
        "v1.27.1",
        "845ef3d2d4956967b4726f375c3c5094b0088f3f905bbaf7f6eb0cd32d77e81b",
        ("postgresql.cnpg.io_clusters.yaml",),
    ),
    Source(
        "github.com/kedacore/keda/v2",
        "v2.18.0",
        "290aeed7e5a3dccafd1fa99d68cd33c65b53fe563768ca45debc2c66896cc7d8",
        ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"),
    ),
)


def fetch(source: Source, destination: Path) -> list[Path]:
    wanted = [destination / name for name in source.files]
    if all(path.exists() for path in wanted):
        return []
    with urllib.request.urlopen(source.url, timeout=120) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise SystemExit(
            f"[crds] {source.url}: sha256 {digest}, expected {source.sha256}; refusing it"
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for path in wanted:
            member = f"{source.module}@{source.version}/config/crd/bases/{path.name}"
            path.write_bytes(archive.read(member))
    return wanted


def main() -> int:
    DESTINATION.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        for path in fetch(source, DESTINATION):
            print(f"[install] CRD {path.name} ({source.module}@{source.version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

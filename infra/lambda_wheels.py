"""The compiled libraries Lambda runs (numpy, scipy), as the manylinux wheels of the deployed runtime.

``make`` runs ``python -m infra.lambda_wheels`` once (a stamp; again when ``pyproject.toml`` changes):
``pip download`` of the versions ``pyproject.toml`` pins, for CPython 3.13 on manylinux x86_64, into
``.cache/lambda-wheels``. CDK then builds the layer from them offline, without Docker
(``infra.constructs.bundles``). Only the standard library here: ``make`` runs it before anything else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS_DIR = ROOT / ".cache" / "lambda-wheels"
#: written once every wheel is there (``make``'s target)
STAMP = WHEELS_DIR / ".downloaded"
#: The deployed runtime's Python (``infra.constructs.function.RUNTIME``; a test checks they agree).
PYTHON_VERSION = "3.13"
#: Lambda's x86_64 runtimes run on Amazon Linux 2023 (glibc 2.34): both tags load there.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
#: The processor the wheels are built for: the functions that use them run on it.
ARCHITECTURE = "x86_64"
#: The distributions of each compiled bundle (the layer's contents).
WHEEL_BUNDLES: Mapping[str, tuple[str, ...]] = {"analytics": ("numpy", "scipy")}
_PIN = re.compile(r"^\s*([A-Za-z0-9._-]+)\s*==\s*([A-Za-z0-9.+!_-]+)\s*$")


class MissingWheels(RuntimeError):
    """The wheels a layer is built from are not downloaded: ``make`` downloads them."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def pins(distributions: tuple[str, ...], pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Each distribution's version, as ``pyproject.toml``'s dependencies pin it (``name==version``)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pinned = {normalise(m.group(1)): m.group(2) for d in dependencies if (m := _PIN.match(d.split(";")[0]))}
    missing = [d for d in distributions if normalise(d) not in pinned]
    if missing:
        raise ValueError(f"pyproject.toml pins no exact version of {', '.join(missing)} (name==version)")
    return {d: pinned[normalise(d)] for d in distributions}


def download_command(directory: Path = WHEELS_DIR) -> list[str]:
    """``pip download`` of every bundle's pinned wheels for the runtime, binary only, no dependencies."""
    requirements = [
        f"{name}=={version}"
        for distributions in WHEEL_BUNDLES.values()
        for name, version in pins(distributions).items()
    ]
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--no-deps",
        *platforms,
        "--python-version",
        PYTHON_VERSION,
        *requirements,
        "-d",
        str(directory),
    ]


def wheels(bundle: str, directory: Path = WHEELS_DIR) -> list[Path]:
    """The downloaded wheels of ``bundle``, one per distribution at its pinned version, or
    ``MissingWheels`` naming what to run."""
    tag = f"cp{PYTHON_VERSION.replace('.', '')}"
    found = []
    for name, version in pins(WHEEL_BUNDLES[bundle]).items():
        candidates = sorted(directory.glob(f"{normalise(name)}-{version}-{tag}-*{ARCHITECTURE}*.whl"))
        if not candidates:
            raise MissingWheels(
                f"The {bundle} layer needs the {name} {version} wheel for Lambda (CPython {PYTHON_VERSION}, "
                f"manylinux {ARCHITECTURE}) in {directory}: run `make synth` or `make test` once (online), "
                "or `python -m infra.lambda_wheels`"
            )
        found.append(candidates[-1])
    return found


def main() -> int:
    """Download every bundle's wheels afresh (older versions removed), then write the stamp."""
    shutil.rmtree(WHEELS_DIR, ignore_errors=True)
    WHEELS_DIR.mkdir(parents=True)
    subprocess.run(download_command(), check=True)
    for bundle in WHEEL_BUNDLES:
        for wheel in wheels(bundle):
            print(f"lambda wheel: {wheel.relative_to(ROOT)}")
    STAMP.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())

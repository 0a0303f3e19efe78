"""Layers of libraries beyond Powertools, bundled without Docker.

The Powertools layer brings Powertools and pydantic; the functions that render templates also need
jinja2 and markupsafe. CDK's local bundling copies their installed files (the list each distribution
records, ``importlib.metadata``) into the layer's ``python/`` folder: offline, no Docker, the exact
versions the tests ran. Compiled extensions are left out, so the layer runs on any architecture:
markupsafe then uses its pure-Python ``_native`` escaping, jinja2 has none.

The fit function needs numpy and scipy, which are compiled: their layer is unpacked from the manylinux
wheels of the deployed runtime (``infra.lambda_wheels``, downloaded once by ``make``), without test
suites, type stubs, headers and build-time files, and runs on that architecture (x86_64) only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import lambda_wheels
from infra.wiring import Architecture, Bundle

#: The distributions each pure-Python bundle holds (what ``pyproject.toml`` pins).
LIBRARY_BUNDLES: Mapping[Bundle, tuple[str, ...]] = {"templates": ("jinja2", "markupsafe")}
#: The bundles of compiled libraries, from the runtime's wheels (``infra.lambda_wheels``).
WHEEL_BUNDLES: Mapping[Bundle, tuple[str, ...]] = {"analytics": lambda_wheels.WHEEL_BUNDLES["analytics"]}
#: Left out of a compiled bundle: what only tests and compilers read. Directories of these names
#: (the libraries' test suites, which nothing imports at run time), files with these suffixes (type
#: stubs, C and Cython headers and sources, static libraries, pkg-config files), the install record.
STRIPPED_DIRECTORIES = ("tests",)
STRIPPED_SUFFIXES = (".pyi", ".pxd", ".pxi", ".h", ".hpp", ".c", ".cpp", ".f", ".f90", ".a", ".pc")
STRIPPED_NAMES = ("RECORD",)
#: Never copied: compiled extensions (built for this machine, not Lambda's), their C sources, caches,
#: and the install record (it lists what was left out).
EXCLUDED_SUFFIXES = (".so", ".pyd", ".dylib", ".c", ".pyc")
EXCLUDED_NAMES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
#: Docker is never used (local bundling always succeeds), but CDK requires an image.
UNUSED_IMAGE = "public.ecr.aws/sam/build-python3.13"


def bundled_files(distribution: str) -> list[tuple[Path, PurePosixPath]]:
    """Each installed file of ``distribution`` worth shipping: (where it is, where it goes under
    ``python/``). Packages and their licences; no compiled extension, no cache."""
    dist = importlib.metadata.distribution(distribution)
    found = []
    for file in dist.files or ():
        relative = PurePosixPath(str(file))
        if relative.parts[0] == ".." or "__pycache__" in relative.parts:
            continue  # scripts installed outside site-packages, and caches
        if relative.suffix in EXCLUDED_SUFFIXES or relative.name in EXCLUDED_NAMES:
            continue
        found.append((Path(str(dist.locate_file(file))), relative))
    return found


@jsii.implements(ILocalBundling)
class InstalledPackages:
    """CDK local bundling: the distributions' pure-Python files into ``<output>/python/``."""

    def __init__(self, distributions: tuple[str, ...]) -> None:
        self.distributions = distributions

    def try_bundle(self, output_dir: str, _options: Any) -> bool:
        target = Path(output_dir) / "python"
        for distribution in self.distributions:
            for source, relative in bundled_files(distribution):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
        return True

    def fingerprint(self) -> str:
        """The asset's hash: the distributions' names and versions (a new version, a new layer)."""
        pinned = ",".join(f"{d}=={importlib.metadata.version(d)}" for d in self.distributions)
        return hashlib.sha256(pinned.encode()).hexdigest()


def kept(relative: PurePosixPath) -> bool:
    """Whether a file of a wheel goes into a compiled bundle's layer (see ``STRIPPED_*``); the wheel's
    ``.data`` folders (scripts, headers) never do."""
    if any(part in STRIPPED_DIRECTORIES or part.endswith(".data") for part in relative.parts[:-1]):
        return False
    return relative.suffix not in STRIPPED_SUFFIXES and relative.name not in STRIPPED_NAMES


@jsii.implements(ILocalBundling)
class Wheels:
    """CDK local bundling: the bundle's wheels unpacked into ``<output>/python/``, stripped."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        #: raises ``MissingWheels`` (naming ``make``) now, at synth, rather than half-way through
        self.wheels = lambda_wheels.wheels(bundle)

    def try_bundle(self, output_dir: str, _options: Any) -> bool:
        target = Path(output_dir) / "python"
        for wheel in self.wheels:
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.infolist():
                    relative = PurePosixPath(member.filename)
                    if member.is_dir() or ".." in relative.parts or not kept(relative):
                        continue
                    destination = target / relative
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as source, destination.open("wb") as copy:
                        shutil.copyfileobj(source, copy)
        return True

    def fingerprint(self) -> str:
        """The asset's hash: the wheels' names and contents, and what is stripped from them."""
        digest = hashlib.sha256(repr((STRIPPED_DIRECTORIES, STRIPPED_SUFFIXES, STRIPPED_NAMES)).encode())
        for wheel in self.wheels:
            digest.update(wheel.name.encode())
            with wheel.open("rb") as content:
                digest.update(hashlib.file_digest(content, "sha256").digest())
        return digest.hexdigest()


def bundle_architecture(bundle: Bundle) -> Architecture | None:
    """The one architecture a bundle runs on (its compiled libraries'), or None: any."""
    return lambda_wheels.ARCHITECTURE if bundle in WHEEL_BUNDLES else None  # type: ignore[return-value]


def layer_description(bundle: Bundle) -> str:
    """What the layer's description says it holds (the tests find layers by it)."""
    if bundle in WHEEL_BUNDLES:
        versions = lambda_wheels.pins(WHEEL_BUNDLES[bundle])
        return (
            f"Lifecycle {bundle}: {', '.join(f'{n} {v}' for n, v in versions.items())} (manylinux "
            f"{lambda_wheels.ARCHITECTURE} wheels, CPython {lambda_wheels.PYTHON_VERSION})"
        )
    return f"Lifecycle {bundle}: {', '.join(LIBRARY_BUNDLES[bundle])} (pure Python)"


def library_layer(
    scope: Construct, construct_id: str, bundle: Bundle, *, runtime: lambda_.Runtime
) -> lambda_.LayerVersion:
    """A layer with the bundle's libraries, for ``runtime``: on any architecture (pure Python), or on the
    one its wheels are built for."""
    packages: InstalledPackages | Wheels = (
        Wheels(bundle) if bundle in WHEEL_BUNDLES else InstalledPackages(LIBRARY_BUNDLES[bundle])
    )
    code = lambda_.Code.from_asset(
        # the source folder is only what Docker bundling would mount: never read
        str(Path(__file__).parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=packages.fingerprint(),
        bundling=BundlingOptions(image=DockerImage.from_registry(UNUSED_IMAGE), local=packages),
    )
    architecture = bundle_architecture(bundle)
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[runtime],
        compatible_architectures=(
            [lambda_.Architecture.ARM_64, lambda_.Architecture.X86_64]
            if architecture is None
            else [lambda_.Architecture.X86_64 if architecture == "x86_64" else lambda_.Architecture.ARM_64]
        ),
        description=layer_description(bundle),
    )

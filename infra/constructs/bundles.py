"""Layers of pure-Python libraries, bundled without Docker from what this interpreter has installed.

The Powertools layer brings Powertools and pydantic; the functions that render templates also need
jinja2 and markupsafe. CDK's local bundling copies their installed files (the list each distribution
records, ``importlib.metadata``) into the layer's ``python/`` folder: offline, no Docker, the exact
versions the tests ran. Compiled extensions are left out, so the layer runs on any architecture:
markupsafe then uses its pure-Python ``_native`` escaping, jinja2 has none.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.wiring import Bundle

#: The distributions each bundle holds (what ``pyproject.toml`` pins).
LIBRARY_BUNDLES: Mapping[Bundle, tuple[str, ...]] = {"templates": ("jinja2", "markupsafe")}
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


def library_layer(
    scope: Construct, construct_id: str, bundle: Bundle, *, runtime: lambda_.Runtime
) -> lambda_.LayerVersion:
    """A layer with the bundle's libraries, for ``runtime`` on any architecture."""
    packages = InstalledPackages(LIBRARY_BUNDLES[bundle])
    code = lambda_.Code.from_asset(
        # the source folder is only what Docker bundling would mount: never read
        str(Path(__file__).parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=packages.fingerprint(),
        bundling=BundlingOptions(image=DockerImage.from_registry(UNUSED_IMAGE), local=packages),
    )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[runtime],
        compatible_architectures=[lambda_.Architecture.ARM_64, lambda_.Architecture.X86_64],
        description=f"Lifecycle {bundle}: {', '.join(packages.distributions)} (pure Python)",
    )

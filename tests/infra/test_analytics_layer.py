"""The numpy/scipy layer as synthesized: unpacked from the runtime's manylinux wheels without Docker,
stripped of what only tests and compilers read, importable and fitting on its own in the runtime's
Python, and, with the Powertools layer and the code, within Lambda's size limit."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import lambda_wheels
from infra.constructs.bundles import layer_description
from infra.constructs.function import RUNTIME
from tests.conftest import ROOT, resources
from tests.infra.test_template import interpreter_for

#: Lambda's limit on a function's code and layers, unzipped (262,144,000 bytes).
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
#: What we allow for the Powertools layer, which the stack takes from AWS's account by SSM parameter and
#: cannot measure offline: its installed distributions measure about 20 MB here (``powertools_installed``),
#: and its maintainers report the whole layer, every extra included, at a few MB zipped. Generous on purpose.
POWERTOOLS_LAYER_ALLOWANCE = 40 * 1024 * 1024
#: The distributions of the Powertools layer that this project uses (it holds a few more extras).
POWERTOOLS_DISTRIBUTIONS = (
    "aws-lambda-powertools",
    "pydantic",
    "pydantic-core",
    "aws-xray-sdk",
    "wrapt",
    "jmespath",
    "typing-extensions",
    "annotated-types",
    "typing-inspection",
)


def asset_of(synthesized: dict[str, Any], layer_logical: str) -> Path:
    layer = synthesized["template"]["Resources"][layer_logical]
    return synthesized["assembly"] / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"


@pytest.fixture(scope="module")
def layer(synthesized: dict[str, Any]) -> Path:
    """The analytics layer's ``python/`` folder, as CDK bundled it."""
    (logical,) = [
        logical
        for logical, layer in resources(synthesized["template"], "AWS::Lambda::LayerVersion").items()
        if layer["Properties"]["Description"] == layer_description("analytics")
    ]
    asset = asset_of(synthesized, logical)
    assert sorted(p.name for p in asset.iterdir()) == ["python"]
    return asset / "python"


@pytest.fixture(scope="module")
def code(synthesized: dict[str, Any]) -> Path:
    """The functions' code asset (``functions/`` and ``shared/``)."""
    (asset,) = [
        p
        for p in synthesized["assembly"].iterdir()
        if p.name.startswith("asset.") and p.is_dir() and (p / "functions").is_dir()
    ]
    return asset


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_layer_holds_the_pinned_wheels_for_the_runtime_and_architecture(layer: Path) -> None:
    for name, version in lambda_wheels.pins(("numpy", "scipy")).items():
        assert importlib.metadata.version(name) == version, "the layer holds the versions the tests run"
        (info,) = layer.glob(f"{name}-{version}.dist-info")
        tags = [
            line.split(": ", 1)[1]
            for line in (info / "WHEEL").read_text().splitlines()
            if line.startswith("Tag:")
        ]
        assert tags and all(t.startswith("cp313-cp313-manylinux") and t.endswith("_x86_64") for t in tags), (
            tags
        )
        assert list(info.glob("LICENSE*")) or list(info.glob("licenses/*")), (
            "the licence travels with the code"
        )
        assert not (info / "RECORD").exists(), "the install record lists files that were left out"
    assert f"python{lambda_wheels.PYTHON_VERSION}" == RUNTIME.name
    # the compiled libraries and the BLAS/LAPACK and Fortran runtimes they load
    assert list((layer / "numpy" / "_core").glob("_multiarray_umath.cpython-313-x86_64-linux-gnu.so"))
    assert list((layer / "numpy.libs").glob("*.so*")) and list((layer / "scipy.libs").glob("*.so*"))


def test_the_layer_leaves_out_tests_stubs_headers_and_build_files(layer: Path) -> None:
    files = [p for p in layer.rglob("*") if p.is_file()]
    assert not [p for p in layer.rglob("tests") if p.is_dir()]
    assert not [p for p in files if p.suffix in (".pyi", ".pxd", ".h", ".c", ".a", ".pyc")]
    assert not list(layer.rglob("__pycache__"))
    assert (layer / "numpy" / "testing" / "__init__.py").is_file(), (
        "numpy.testing is a module, not a test suite"
    )


def model_imports() -> list[str]:
    """Every numpy and scipy module the analytics model code imports (``shared/analytics``)."""
    found: set[str] = set()
    for path in sorted((ROOT / "shared" / "analytics").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] in ("numpy", "scipy")}
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in ("numpy", "scipy")
            ):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names if node.module == "scipy"}
    return sorted(found)


#: Run by the runtime's Python with only the layer and the code asset: every module the models import,
#: then the BG/NBD fit on a small population (numpy's and scipy's compiled code, BLAS included).
FIT_IN_LAYER = """
import importlib, json, sys
layer, code, modules = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [layer, code]
for module in modules:
    importlib.import_module(module)
import numpy as np, scipy, scipy.linalg
assert np.__file__.startswith(layer) and scipy.__file__.startswith(layer), (np.__file__, scipy.__file__)
from shared.analytics.btyd import BgNbd, fit_bgnbd
rng = np.random.default_rng(7)
n = 400
T = rng.uniform(20.0, 40.0, n)
x = rng.poisson(2.0, n).astype(float)
t_x = np.where(x > 0, T * rng.uniform(0.2, 1.0, n), 0.0)
model = fit_bgnbd(x, t_x, T)
start = BgNbd(1.0, 1.0, 1.0, 1.0)
fitted, initial = model.log_likelihood(x, t_x, T).sum(), start.log_likelihood(x, t_x, T).sum()
print(json.dumps({"fitted": float(fitted), "initial": float(initial), "solve": float(scipy.linalg.solve([[2.0]], [4.0])[0]),
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "boto3", "botocore"))}))
"""


def test_the_layer_imports_and_fits_in_a_bare_interpreter_of_the_runtime(layer: Path, code: Path) -> None:
    python = interpreter_for(lambda_wheels.PYTHON_VERSION)
    assert python, f"no Python {lambda_wheels.PYTHON_VERSION} on this machine to run the layer with"
    modules = model_imports()
    assert {"numpy", "scipy.optimize", "scipy.special"} <= set(modules), modules
    result = subprocess.run(
        # -S: no site-packages, -I: isolated (no PYTHONPATH, no user site); only the layer and the code;
        # -B: no bytecode written into them (Lambda's /opt is read-only too)
        [python, "-B", "-S", "-I", "-c", FIT_IN_LAYER, str(layer), str(code), json.dumps(modules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["fitted"] > outcome["initial"], "the fit improves on its starting point"
    assert outcome["solve"] == 2.0
    assert outcome["loaded"] == [], "the model code needs neither pydantic nor the AWS SDK"


def test_the_fit_function_stays_within_lambdas_unzipped_limit(layer: Path, code: Path) -> None:
    analytics, own = size(layer), size(code)
    total = analytics + own + POWERTOOLS_LAYER_ALLOWANCE
    print(
        f"\nanalytics layer {analytics / 2**20:.1f} MiB, code {own / 2**20:.1f} MiB, Powertools allowance "
        f"{POWERTOOLS_LAYER_ALLOWANCE / 2**20:.0f} MiB (installed here: {powertools_installed() / 2**20:.1f} MiB): "
        f"{total / 2**20:.1f} of {LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MiB"
    )
    assert powertools_installed() < POWERTOOLS_LAYER_ALLOWANCE
    assert total <= LAMBDA_UNZIPPED_LIMIT
    # stripping earns its place: the wheels unpacked whole weigh more
    whole = sum(
        info.file_size
        for wheel in lambda_wheels.wheels("analytics")
        for info in zipfile.ZipFile(wheel).infolist()
    )
    assert analytics < whole * 0.9, (analytics, whole)


def powertools_installed() -> int:
    """What this project's share of the Powertools layer weighs, installed here (no caches)."""
    total = 0
    for name in POWERTOOLS_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            path = Path(str(distribution.locate_file(file)))
            if path.is_file() and "__pycache__" not in path.parts and ".." not in str(file):
                total += path.stat().st_size
    return total

"""The wheels of the analytics layer: the versions pyproject.toml pins, for the runtime, downloaded once
by ``make`` (the layer itself is checked as synthesized, in tests/infra/test_analytics_layer.py)."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path, PurePosixPath

import pytest

from infra import lambda_wheels
from infra.constructs.bundles import WHEEL_BUNDLES, bundle_architecture, kept
from infra.wiring import FUNCTIONS
from tests.conftest import ROOT


def test_the_pins_are_pyprojects_and_the_versions_the_tests_run() -> None:
    pinned = lambda_wheels.pins(("numpy", "scipy"))
    assert pinned == {
        "numpy": importlib.metadata.version("numpy"),
        "scipy": importlib.metadata.version("scipy"),
    }


def test_a_library_without_an_exact_pin_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=2", "scipy==1.18.1"]\n')
    with pytest.raises(ValueError, match="pins no exact version of numpy"):
        lambda_wheels.pins(("numpy", "scipy"), pyproject)


def test_the_download_is_binary_only_for_the_runtime_and_its_platform() -> None:
    command = lambda_wheels.download_command(Path("/tmp/w"))
    assert command[1:4] == ["-m", "pip", "download"]
    assert {"--only-binary=:all:", "--no-deps"} <= set(command)
    platforms = [command[i + 1] for i, part in enumerate(command) if part == "--platform"]
    assert platforms == ["manylinux_2_28_x86_64", "manylinux2014_x86_64"]
    assert command[command.index("--python-version") + 1] == "3.13"
    pinned = lambda_wheels.pins(("numpy", "scipy"))
    assert [f"numpy=={pinned['numpy']}", f"scipy=={pinned['scipy']}"] == [
        part for part in command if re.match(r"^(numpy|scipy)==", part)
    ]
    assert command[-2:] == ["-d", "/tmp/w"]


def test_missing_wheels_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(lambda_wheels.MissingWheels, match="make synth` or `make test"):
        lambda_wheels.wheels("analytics", tmp_path)
    pinned = lambda_wheels.pins(("numpy", "scipy"))
    for name, version in pinned.items():
        (tmp_path / f"{name}-{version}-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl").touch()
    (tmp_path / f"numpy-{pinned['numpy']}-cp313-cp313-manylinux_2_28_aarch64.whl").touch()
    assert [w.name.split("-")[0] for w in lambda_wheels.wheels("analytics", tmp_path)] == ["numpy", "scipy"]
    assert all("x86_64" in w.name for w in lambda_wheels.wheels("analytics", tmp_path))


def test_make_downloads_them_once_before_the_tests_and_the_synth() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert f"LAMBDA_WHEELS := {lambda_wheels.STAMP.relative_to(ROOT)}" in makefile
    rule = re.search(r"^\$\(LAMBDA_WHEELS\): (.*)\n\t(.*)$", makefile, re.MULTILINE)
    assert rule and "pyproject.toml" in rule.group(1) and rule.group(2) == "$(PY) -m infra.lambda_wheels"
    for target in ("test", "synth", "deploy", "diff"):
        assert re.search(rf"^{target}: .*\$\(LAMBDA_WHEELS\)", makefile, re.MULTILINE), target
    assert ".cache/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(
    ("path", "shipped"),
    [
        ("numpy/_core/_multiarray_umath.cpython-313-x86_64-linux-gnu.so", True),
        ("numpy.libs/libscipy_openblas64_-a1b2.so", True),
        ("scipy/optimize/_minimize.py", True),
        ("numpy/testing/__init__.py", True),
        ("numpy-2.5.5.dist-info/LICENSE.txt", True),
        ("scipy/optimize/tests/test_minimize.py", False),
        ("numpy/_core/tests/data/umath-validation-set-README.txt", False),
        ("numpy/__init__.pyi", False),
        ("numpy/_core/include/numpy/ndarraytypes.h", False),
        ("numpy/_core/lib/libnpymath.a", False),
        ("scipy/linalg/cython_blas.pxd", False),
        ("numpy-2.5.5.dist-info/RECORD", False),
        ("numpy-2.5.5.data/scripts/f2py", False),
    ],
)
def test_what_a_compiled_bundle_ships(path: str, shipped: bool) -> None:
    assert kept(PurePosixPath(path)) is shipped


def test_a_function_with_a_compiled_bundle_runs_on_its_architecture() -> None:
    for spec in FUNCTIONS:
        for bundle in spec.bundles:
            if bundle in WHEEL_BUNDLES:
                assert spec.architecture == bundle_architecture(bundle) == "x86_64", spec.name
    # issue 15: the recommendations pass fits its model with numpy and scipy too
    assert [spec.name for spec in FUNCTIONS if spec.architecture != "arm64"] == [
        "analytics_fit",
        "recommendations_fit",
    ]

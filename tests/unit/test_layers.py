"""The layers of the code: imports run downward only, and no modules import each other in a circle.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a type-only
import upward still ties a lower layer to a higher one. A new module must belong to a layer here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: Bottom to top. A module may import modules of its own layer (without cycles) and of lower layers.
#: The domain packages are ordered too: tracking knows nothing of scoring, scoring nothing of contacts.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("shared.errors", "shared.clock", "shared.versioning")),
    ("delivery", ("shared.delivery",)),
    ("tracking", ("shared.tracking",)),
    ("scoring", ("shared.scoring",)),
    ("analytics", ("shared.analytics",)),
    # issue 15: recommendations and NPS (domain code, pure)
    ("recommendations", ("shared.recommendations",)),
    ("nps", ("shared.nps",)),
    ("contacts", ("shared.contacts",)),
    ("segments", ("shared.segments",)),
    ("engagement", ("shared.engagement",)),
    ("automations", ("shared.automations",)),
    ("campaigns", ("shared.campaigns",)),
    ("metrics", ("shared.metrics",)),
    ("usecases", ("shared.usecases",)),
    (
        "boundary",
        ("shared.adapters", "shared.http", "shared.observability", "shared.settings", "shared.scope"),
    ),
    ("admin", ("shared.admin", "shared.console")),
    ("runtime", ("shared.runtime",)),
    ("functions", ("functions",)),
    ("infra", ("infra",)),
)
#: Layers that neither one may import from the other although they are not ordered.
SIDE_BY_SIDE = {frozenset({"functions", "infra"})}
#: Pure code: no AWS SDK, no Lambda runtime toolkit.
PURE = {
    "base",
    "delivery",
    "tracking",
    "scoring",
    "analytics",
    "contacts",
    "segments",
    "engagement",
    "automations",
    "usecases",
}
# issue 13: campaigns (domain code, pure)
PURE.add("campaigns")
# issue 13: the lifecycle metrics' domain (periods, counters, reports) is pure too
PURE.add("metrics")
# issue 15: recommendations and NPS
PURE.update({"recommendations", "nps"})
AWS_PACKAGES = {"boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk"}
SOURCES = ("shared", "functions", "infra")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    module_name(path): path
    for source in SOURCES
    for path in sorted((ROOT / source).rglob("*.py"))
    if "cdk.out" not in path.parts
}


def layer_of(module: str) -> str | None:
    """The layer whose longest prefix names the module; the root package ``shared`` belongs to none."""
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), layer)
    return best[1] if best else None


RANK = {layer: rank for rank, (layer, _) in enumerate(LAYERS)}
RANK["infra"] = RANK["functions"]


def imports(source: str, module: str = "") -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``source``, resolved to the module it names."""
    package = module.split(".")
    if module and MODULES[module].name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:  # ``from shared.usecases import recording`` names a module
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in MODULES else base


def project_imports(module: str) -> Iterator[tuple[int, str]]:
    for line, name in dict.fromkeys(imports(MODULES[module].read_text(), module)):
        if name.split(".")[0] in SOURCES:
            yield line, name


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if m != "shared" and layer_of(m) is None]
    assert not unplaced, f"give these modules a layer in tests/unit/test_layers.py: {unplaced}"


def test_imports_run_downward() -> None:
    upward = []
    for module in MODULES:
        layer = layer_of(module)
        if layer is None:
            continue
        for line, name in project_imports(module):
            target = layer_of(name)
            if target is None or target == layer:
                continue
            if RANK[target] > RANK[layer] or frozenset({layer, target}) in SIDE_BY_SIDE:
                upward.append(
                    f"{MODULES[module].relative_to(ROOT)}:{line} ({layer}) imports {name} ({target})"
                )
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = {m: {name for _, name in project_imports(m) if name in MODULES and name != m} for m in MODULES}
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"modules that import each other in a circle: {cycles}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) in PURE))
def test_pure_layers_do_not_talk_to_aws(module: str) -> None:
    """Domain and use cases reach AWS only through ports that adapters implement."""
    reached = [
        name for _, name in imports(MODULES[module].read_text(), module) if name.split(".")[0] in AWS_PACKAGES
    ]
    assert not reached, f"{module} imports {reached}"


def test_the_checker_sees_type_only_imports_and_cycles() -> None:
    """The checks above must not pass vacuously: a TYPE_CHECKING or function-level import is an import."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from shared.http import HttpRequest\n"
        "def late():\n    from shared.contacts import model\n"
    )
    assert [name for _, name in imports(source)] == ["typing", "shared.http", "shared.contacts.model"]
    assert RANK[layer_of("shared.http")] > RANK[layer_of("shared.tracking.wire")]
    components = _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert sorted(map(sorted, components)) == [["a", "b"], ["c"]]


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on deep import chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components

"""The floor plan holds: imports read from the source (function-level ones included) form no circle, every import
goes down the package's layers, and the package never reaches up into the page, the tests or the benchmarks.
docs/architecture.md draws these layers."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# mnist_gan's layers, top to bottom: a module may import from its own group and from the groups below it
LAYERS = [
    {"__main__"},
    {"cli"},
    {"service"},
    {"sweeps"},
    {"hub"},
    {"training"},
    {"serving"},
    {"quality"},
    {"inside"},
    {"model"},
    {"config", "data", "device", "images", "checks", "once", "access", "run_folder"},
    {"atomic_files"},
    {"errors"},
]
FOLDERS = ("mnist_gan", "ui", "testing", "tests", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, anywhere in its code."""
    modules = {module_name(p): p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}
    modules["app"] = ROOT / "app.py"
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def group(module: str) -> str:
    """A module's layer group: its subpackage (mnist_gan.training.trainer -> training) or its own name."""
    parts = module.split(".")
    return parts[1]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_that_imports_it_back():
    assert circles(imports()) == []


def test_every_import_inside_the_package_goes_down_its_layers():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    upward = []
    for source, targets in imports().items():
        if not source.startswith("mnist_gan."):
            continue
        assert group(source) in rank, f"{source}: add its group to LAYERS"
        for target in targets:
            if target.startswith("mnist_gan.") and target != "mnist_gan" and rank[group(target)] < rank[group(source)]:
                upward.append(f"{source} -> {target}")
    assert upward == []


def test_the_package_never_reaches_up_and_tests_share_helpers_only_through_testing():
    graph = imports()
    allowed = {"mnist_gan": ("mnist_gan",), "ui": ("mnist_gan", "ui"), "app": ("mnist_gan", "ui"),
               "testing": ("mnist_gan", "testing", "app"), "bench": ("mnist_gan", "testing", "bench", "app", "ui"),
               "tests": ("mnist_gan", "testing", "app", "ui")}
    wrong = []
    for source, targets in graph.items():
        top = source.split(".")[0]
        for target in targets:
            if target.split(".")[0] not in allowed[top]:
                wrong.append(f"{source} -> {target}")
            elif top == "tests" and target.startswith("tests."):
                wrong.append(f"{source} -> {target}")  # a test module's helpers belong in testing/
    assert wrong == []


def test_every_module_says_what_it_holds_in_its_first_line():
    silent = [module_name(p) for folder in ("mnist_gan", "ui", "testing", "bench") for p in (ROOT / folder).rglob("*.py")
              if p.stat().st_size and not (ast.get_docstring(ast.parse(p.read_text())) or "").strip()]
    assert silent == []

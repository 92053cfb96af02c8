"""The package's shape: no import circle, and every import points down the pipeline's stages
(ARCHITECTURE in README.md). Function-level (lazy) imports count too."""
import ast
from pathlib import Path

import moldesign

PKG = Path(moldesign.__file__).parent
# lower number = lower layer; a module may import from its own layer only within its own stage
LAYERS = {
    "config": 0, "errors": 0, "resources": 0, "workers": 0,
    "chem": 1,
    "data": 2, "known_molecules": 2,
    "model": 3,
    "decoding": 4,
    "training": 5, "screening": 5,
    "design": 6, "drawing": 6,
    "api": 7, "frontend": 6,  # frontend: the user-error list both front ends and the API re-export
    "cli": 8, "webapp": 8,
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """moldesign module -> the moldesign modules it imports (from-imports resolved to modules)."""
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    graph[m].add(full if full in mods else target)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names)
        graph[m] = {t for t in graph[m] if t in mods and t != m}
    return graph


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_circle():
    graph = import_graph()
    state, path, circles = {}, [], []

    def visit(u):
        state[u] = "open"
        path.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                circles.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v)
        path.pop()
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_every_import_points_down():
    graph = import_graph()
    assert set(LAYERS) >= {stage(m) for m in graph if stage(m)}, "a new stage needs its place in LAYERS"
    upward = [f"{a} -> {b}" for a, targets in graph.items() for b in targets
              if stage(a) and stage(b) and stage(a) != stage(b) and LAYERS[stage(a)] <= LAYERS[stage(b)]]
    assert not upward, "imports that do not point down: " + ", ".join(sorted(upward))

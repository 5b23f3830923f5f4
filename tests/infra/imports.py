"""Static import resolution for a Lambda function, as the Lambda runtime would see it.

The deps layer holds arm64 CPython 3.12 wheels, which cannot be imported on the machine running the tests,
so the handler is not imported: its imports are read (``ast``) and resolved against exactly what the
runtime has on ``sys.path``: the function's folder, the two layers, the standard library and the runtime's
own boto3/botocore.

- The hub's code (function folder, hub layer) is followed through every import that can run: module level
  and inside functions (lazy imports are the rule here), but not ``if TYPE_CHECKING:`` blocks nor imports
  guarded by ``except ImportError``.
- Third-party code in the deps layer is followed through its unconditional module-level imports, which
  checks the installed closure too (a stripped or missing transitive dependency shows up).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})
# In sys.stdlib_module_names of the 3.11 test interpreter, gone from the 3.12 Lambda runtime.
REMOVED_IN_312 = frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd"})
STDLIB = frozenset(sys.stdlib_module_names) - REMOVED_IN_312
EXTENSION_TAGS = ("cpython-312-aarch64-linux-gnu", "abi3")
# Statements whose body runs (now or when called) in the hub's own code.
BODIES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.With, ast.For, ast.While)


@dataclass
class Module:
    name: str
    path: Path  # a .py file (or an extension / namespace directory, which is not parsed)
    first_party: bool


@dataclass
class Resolution:
    resolved: dict[str, Module] = field(default_factory=dict)
    runtime: set[str] = field(default_factory=set)
    unresolved: dict[str, set[str]] = field(default_factory=dict)  # module -> importers


class ImportGraph:
    def __init__(self, function_dir: Path, hub_layer: Path, deps_layer: Path) -> None:
        # Lambda's order: the function code first, then the layers (/opt/python), then the runtime.
        self.roots = [(function_dir, True), (hub_layer, True), (deps_layer, False)]

    def _find_top(self, name: str) -> Module | None:
        for root, first_party in self.roots:
            package = root / name
            if (package / "__init__.py").is_file():
                return Module(name, package / "__init__.py", first_party)
            if (root / f"{name}.py").is_file():
                return Module(name, root / f"{name}.py", first_party)
            for tag in EXTENSION_TAGS:
                if (root / f"{name}.{tag}.so").is_file():
                    return Module(name, root / f"{name}.{tag}.so", first_party)
            if package.is_dir() and not name.endswith(".dist-info"):
                return Module(name, package, first_party)  # namespace package
        return None

    def _find_sub(self, parent: Module, child: str) -> Module | None:
        base = parent.path.parent if parent.path.name == "__init__.py" else parent.path
        if not base.is_dir():
            return None
        name = f"{parent.name}.{child}"
        if (base / child / "__init__.py").is_file():
            return Module(name, base / child / "__init__.py", parent.first_party)
        if (base / f"{child}.py").is_file():
            return Module(name, base / f"{child}.py", parent.first_party)
        for tag in EXTENSION_TAGS:
            if (base / f"{child}.{tag}.so").is_file():
                return Module(name, base / f"{child}.{tag}.so", parent.first_party)
        if (base / child).is_dir():
            return Module(name, base / child, parent.first_party)
        return None

    def resolve(self, entry: Path) -> Resolution:
        result = Resolution()
        start = Module(entry.stem, entry, True)
        queue = [start]
        result.resolved[start.name] = start
        while queue:
            module = queue.pop()
            if module.path.suffix != ".py":
                continue
            for wanted, optional_children in _imports(module):
                for found in self._load(wanted, optional_children, module.name, result):
                    if found.name not in result.resolved:
                        result.resolved[found.name] = found
                        queue.append(found)
        return result

    def _load(self, dotted: str, children: list[str], importer: str, result: Resolution) -> Iterator[Module]:
        """``dotted`` and its parent packages (all run on import), then ``children`` that are modules."""
        top = dotted.split(".")[0]
        if top in STDLIB or top == "__future__":
            return
        if top in RUNTIME_PROVIDED:
            result.runtime.add(top)
            return
        module = result.resolved.get(top) or self._find_top(top)
        if module is None:
            result.unresolved.setdefault(top, set()).add(importer)
            return
        yield module
        for part in dotted.split(".")[1:]:
            sub = result.resolved.get(f"{module.name}.{part}") or self._find_sub(module, part)
            if sub is None:
                result.unresolved.setdefault(f"{module.name}.{part}", set()).add(importer)
                return
            module = sub
            yield module
        for child in children:  # `from package import name`: name may be a submodule
            sub = result.resolved.get(f"{module.name}.{child}") or self._find_sub(module, child)
            if sub is not None:
                yield sub


def _package_of(module: Module) -> str:
    return module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _guards_import_error(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        if handler.type is None:
            return True
        for expr in handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]:
            if isinstance(expr, ast.Name):
                names.add(expr.id)
    return bool(names & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _statements(module: Module, tree: ast.Module) -> Iterator[ast.stmt]:
    """Import statements that run: everywhere in the hub's code, module level only in third-party code."""

    def walk(body: list[ast.stmt], deep: bool) -> Iterator[ast.stmt]:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node
            elif isinstance(node, ast.If):
                if _is_type_checking(node.test):
                    yield from walk(node.orelse, deep)
                elif deep:
                    yield from walk(node.body, deep)
                    yield from walk(node.orelse, deep)
            elif isinstance(node, ast.Try):
                if deep and not _guards_import_error(node):
                    yield from walk(node.body, deep)
                if deep:
                    for handler in node.handlers:
                        yield from walk(handler.body, deep)
                    yield from walk(node.orelse, deep)
                    yield from walk(node.finalbody, deep)
            elif deep and isinstance(node, BODIES):
                yield from walk(node.body, deep)

    yield from walk(tree.body, module.first_party)


def _imports(module: Module) -> Iterator[tuple[str, list[str]]]:
    tree = ast.parse(module.path.read_bytes(), filename=str(module.path))
    for node in _statements(module, tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        else:
            base = node.module or ""
            if node.level:
                package = _package_of(module).split(".")
                anchor = package[: len(package) - node.level + 1] if node.level > 1 else package
                base = ".".join([*anchor, *([base] if base else [])])
            if base:
                yield base, [alias.name for alias in node.names if alias.name != "*"]

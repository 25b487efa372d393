"""The package's modules import each other without cycles."""
import ast
import os.path as osp
from typing import Dict, List, Set

from .conftest import REPO

PACKAGE = 'mmseg_ecotta'


def _modules() -> Dict[str, str]:
    """Module name -> file, for every module of the package."""
    import glob
    modules = {}
    for path in glob.glob(
            osp.join(REPO, PACKAGE, '**', '*.py'), recursive=True):
        parts = osp.relpath(path, REPO)[:-len('.py')].split(osp.sep)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        modules['.'.join(parts)] = path
    return modules


def import_graph(modules: Dict[str, str]) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports, at any level.

    Function-level imports count: they defer a cycle, they do not remove
    it; imports under ``if TYPE_CHECKING:`` do not run. ``from .x import
    y`` is an edge to ``x.y`` when that is a module, else to ``x``.
    """
    graph = {}
    for name, path in modules.items():
        is_package = path.endswith('__init__.py')
        here = name if is_package else name.rsplit('.', 1)[0]
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        typing_only = {
            id(child)
            for node in ast.walk(tree) if isinstance(node, ast.If)
            and 'TYPE_CHECKING' in ast.dump(node.test)
            for child in ast.walk(node)
        }
        edges = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split('.')
                    base = base[:len(base) - node.level + 1]
                    base = '.'.join(base +
                                    ([node.module] if node.module else []))
                else:
                    base = node.module or ''
                targets = [
                    f'{base}.{alias.name}'
                    if f'{base}.{alias.name}' in modules else base
                    for alias in node.names
                ]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Every cycle found by a depth-first search, as a list of modules."""
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_package_has_no_import_cycle():
    assert find_cycles(import_graph(_modules())) == []


def test_the_check_sees_a_function_level_cycle(tmp_path):
    """The two engine hooks of issue 26 imported each other this way."""
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'a.py').write_text('from .b import B\n')
    (package / 'b.py').write_text('def f():\n    from .a import A\n')
    modules = {f'{PACKAGE}.{m}': str(package / f'{m}.py') for m in ('a', 'b')}
    modules[PACKAGE] = str(package / '__init__.py')
    cycles = find_cycles(import_graph(modules))
    assert cycles == [[f'{PACKAGE}.a', f'{PACKAGE}.b', f'{PACKAGE}.a']]

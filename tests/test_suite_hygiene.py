"""Every test of the default suite asserts something (issue: 31 benchmark "tests" once ran asserting nothing)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# Calls that are assertions: pytest.raises/warns/fail/skip, torch.testing.assert_close, np.testing.assert_*.
ASSERTING_ATTRIBUTES = ("raises", "warns", "fail", "skip", "importorskip")


def _asserting_helpers(tree: ast.Module) -> set[str]:
    """Module functions (not tests) that assert, so a test calling one asserts too."""
    return {fn.name for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) and not fn.name.startswith("test")
            and any(_asserts(x, set()) for x in ast.walk(fn))}


def _asserts(node: ast.AST, helpers: set[str]) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Attribute):
        return node.attr in ASSERTING_ATTRIBUTES or node.attr.startswith("assert")
    if isinstance(node, ast.Name):
        return node.id.startswith(("assert", "check")) or node.id in helpers
    return False


def assertion_free_tests(root: Path = TESTS) -> list[str]:
    bad = []
    for path in sorted(root.rglob("test_*.py")):
        if "benchmarks" in path.relative_to(root).parts:  # collected only by tox -e bench
            continue
        tree = ast.parse(path.read_text())
        helpers = _asserting_helpers(tree)
        tests = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        tests += [m for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body if isinstance(m, ast.FunctionDef)]
        for fn in tests:
            if fn.name.startswith("test") and not any(_asserts(x, helpers) for x in ast.walk(fn)):
                bad.append(f"{path.relative_to(root)}:{fn.lineno} {fn.name}")
    return bad


def test_no_default_test_is_assertion_free():
    assert assertion_free_tests() == []


def test_the_scan_finds_an_assertion_free_test(tmp_path):
    (tmp_path / "test_x.py").write_text("def helper():\n    assert 1\n\n\ndef test_a():\n    helper()\n\n\n"
                                        "def test_b():\n    x = 1\n")
    assert assertion_free_tests(tmp_path) == ["test_x.py:9 test_b"]

"""Every query the Firestore stores issue has the index it needs in Terraform.

The stores' queries are read from their sources (``adapters/firestore/*.py``) with ``ast``: per
method, the collection it queries (``self._events(...)`` is the ``events`` subcollection,
``self._col("x")`` the ``{env}_x`` collection), its ``FieldFilter(field, op, ...)`` filters and its
``order_by`` fields. A query that mixes an equality with a range or order on another field, or a
range with an order on another field, needs a composite index; single-field and equality-only
queries (ordered by ``__name__``) are served by Firestore's automatic indexes and index merging.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from tests.infra.conftest import REPO, TfFolder

STORES = REPO / "shared" / "calsync" / "adapters" / "firestore"
EQUALITY_OPS = {"==", "in", "array_contains", "array_contains_any"}


@dataclass
class Query:
    """What one store method asks Firestore."""

    method: str
    collections: set[str] = field(default_factory=set)
    equalities: set[str] = field(default_factory=set)
    ranges: set[str] = field(default_factory=set)
    orders: list[str] = field(default_factory=list)

    def composite(self) -> tuple[str, ...] | None:
        """The composite index fields this query needs (equalities first), or None."""
        others = [name for name in [*sorted(self.ranges), *self.orders] if name != "__name__"]
        ordered = list(dict.fromkeys(others))
        if not ordered or (not self.equalities and len(ordered) == 1):
            return None
        return (*sorted(self.equalities - set(ordered)), *ordered)


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _trees() -> list[ast.Module]:
    return [ast.parse(path.read_text(encoding="utf-8")) for path in sorted(STORES.glob("*.py"))]


def store_queries() -> list[Query]:
    """The queries of every Firestore store method that filters or orders."""
    queries = []
    for node in (n for tree in _trees() for n in ast.walk(tree)):
        if not isinstance(node, ast.FunctionDef):
            continue
        query = Query(method=node.name)
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            args = call.args
            if name == "FieldFilter" and len(args) >= 2:
                field_name, op = _literal(args[0]), _literal(args[1])
                if field_name is None:
                    continue  # a variable field: only used with "==" (checked below)
                (query.equalities if op in EQUALITY_OPS else query.ranges).add(field_name)
            elif name == "order_by" and args and (field_name := _literal(args[0])):
                query.orders.append(field_name)
            elif name == "_events":
                query.collections.add("events")
            elif name == "_col" and args and (collection := _literal(args[0])):
                query.collections.add(f"${{var.environment}}_{collection}")
        if query.equalities or query.ranges or query.orders:
            queries.append(query)
    return queries


def test_variable_field_filters_are_equalities() -> None:
    """Filters on a computed field name must be equalities (else the analysis below is blind)."""
    for call in (n for tree in _trees() for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if getattr(call.func, "id", "") == "FieldFilter" and _literal(call.args[0]) is None:
            assert _literal(call.args[1]) == "==", ast.unparse(call)


def test_the_store_issues_queries() -> None:
    """The analysis finds the store's queries (guards against a refactor hiding them)."""
    methods = {query.method for query in store_queries()}
    assert "_overlapping" in methods  # system_events_overlapping and manual_events_overlapping


def test_every_store_query_has_its_composite_index(calsync_module: TfFolder) -> None:
    """Each needed composite index is declared in modules/calsync/firestore.tf, none is unused."""
    declared = {
        (spec["collection"], tuple(name for name, _ in spec["fields"]))
        for spec in calsync_module.locals["firestore_indexes"].values()
    }
    needed = set()
    for query in store_queries():
        fields = query.composite()
        if fields is None:
            continue
        assert len(query.collections) == 1, f"{query.method}: cannot tell which collection it queries"
        needed.add((next(iter(query.collections)), fields))
    assert needed, "no query needs a composite index? (the store documents events (origin, end))"
    assert needed <= declared, f"missing composite indexes: {sorted(needed - declared)}"
    assert declared <= needed, f"indexes no query uses: {sorted(declared - needed)}"

"""Writes of combos: named model lists tried by a strategy.

Validation on save, so that the router never meets a broken combo: members are known
`provider/model` strings, names of other combos, or `{"model", "weight"}` objects; nested
combos span at most COMBO_MAX_DEPTH levels and never form a cycle; a combo that others use
cannot be deleted or renamed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max

from providers.catalog import Catalog
from providers.selectors import catalog_current

from ..api.errors import InvalidInput
from ..models import Combo, ModelAlias
from ..selectors import combo_referrers
from .aliases import TARGET_RE, provider_model_check

COMBO_EDITABLE_FIELDS = frozenset({"name", "members", "strategy", "config", "is_active", "sort_order"})
COMBO_NAME_RE = re.compile(r"^[a-zA-Z0-9_/.-]{1,100}$")
COMBO_MAX_DEPTH = 3
COMBO_MAX_MEMBERS = 100
# The config keys the router reads, with their inclusive integer bounds.
COMBO_CONFIG_LIMITS = {"maxAttempts": (1, 100), "timeoutMs": (1, 3_600_000)}


def _clean_name(name: str) -> str:
    name = name.strip()
    if not COMBO_NAME_RE.match(name):
        raise InvalidInput("name must be 1-100 letters, digits, '_', '/', '.' or '-'", field="name")
    if ModelAlias.objects.filter(alias=name).exists():
        raise InvalidInput(f"name {name!r} is already a model alias", field="name")
    return name


def _clean_config(config: Any) -> dict[str, int]:
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object", field="config")
    for key, value in config.items():
        if key not in COMBO_CONFIG_LIMITS:
            raise InvalidInput(f"config: unknown key {key!r}; known: {', '.join(COMBO_CONFIG_LIMITS)}", field="config")
        low, high = COMBO_CONFIG_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"config.{key} must be an integer from {low} to {high}", field=f"config.{key}")
    return dict(config)


def _clean_member(raw: Any, *, index: int, combo_names: set[str], catalog: Catalog) -> str | dict[str, Any]:
    """One member, normalised: a string, or {"model", "weight"} with weight 0..100 (default 0)."""
    field = f"models[{index}]"
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"model", "weight"})
        if unknown:
            raise InvalidInput(
                f"{field}: unknown key {unknown[0]!r}; a member object has model and weight", field=field
            )
        weight = raw.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise InvalidInput(f"{field}.weight must be an integer from 0 to 100", field=f"{field}.weight")
        model = _clean_model(raw.get("model"), field=f"{field}.model", combo_names=combo_names, catalog=catalog)
        return {"model": model, "weight": weight}
    return _clean_model(raw, field=field, combo_names=combo_names, catalog=catalog)


def _clean_model(raw: Any, *, field: str, combo_names: set[str], catalog: Catalog) -> str:
    if not isinstance(raw, str) or not TARGET_RE.match(raw.strip()):
        raise InvalidInput(f"{field} must be provider/model, a combo name or {{model, weight}}", field=field)
    value = raw.strip()
    if value in combo_names:
        return value
    if "/" not in value:
        raise InvalidInput(f"{field}: {value!r} is neither a combo nor provider/model", field=field)
    return provider_model_check(value, field=field, catalog=catalog)


def _clean_members(members: Any, *, combo_names: set[str]) -> list[str | dict[str, Any]]:
    if not isinstance(members, list) or not members:
        raise InvalidInput("models must be a non-empty list", field="models")
    if len(members) > COMBO_MAX_MEMBERS:
        raise InvalidInput(f"models has more than {COMBO_MAX_MEMBERS} entries", field="models")
    catalog = catalog_current()
    cleaned = [_clean_member(raw, index=i, combo_names=combo_names, catalog=catalog) for i, raw in enumerate(members)]
    seen: set[str] = set()
    for index, member in enumerate(cleaned):
        model = member["model"] if isinstance(member, dict) else member
        if model in seen:
            raise InvalidInput(f"models[{index}] repeats {model!r}", field=f"models[{index}]")
        seen.add(model)
    return cleaned


def _combo_graph(combo: Combo) -> dict[str, list[str]]:
    """Combo name -> the combo names among its members, with `combo` as it is about to be saved."""
    others = list(Combo.objects.exclude(pk=combo.pk)) if combo.pk else list(Combo.objects.all())
    names = {c.name for c in others} | {combo.name}
    graph = {c.name: [m for m in c.member_models() if m in names] for c in others}
    graph[combo.name] = [m for m in combo.member_models() if m in names]
    return graph


def _find_cycle(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        path.append(name)
        for child in graph.get(name, []):
            found = visit(child)
            if found:
                return found
        path.pop()
        return None

    return visit(start)


def _deepest_chain(name: str, graph: dict[str, list[str]], seen: tuple[str, ...] = ()) -> list[str]:
    chains = [_deepest_chain(child, graph, (*seen, name)) for child in graph.get(name, []) if child not in seen]
    return [name, *max(chains, key=len, default=[])]


def _check_nesting(combo: Combo) -> None:
    graph = _combo_graph(combo)
    cycle = _find_cycle(combo.name, graph)
    if cycle:
        raise InvalidInput(f"models: combos form a cycle: {' → '.join(cycle)}", field="models")
    users = [name for name in graph if name != combo.name and combo.name in _reachable(name, graph)]
    for root in [combo.name, *users]:
        chain = _deepest_chain(root, graph)
        if len(chain) > COMBO_MAX_DEPTH:
            raise InvalidInput(
                f"models: combos nest {len(chain)} levels deep, at most {COMBO_MAX_DEPTH}: {' → '.join(chain)}",
                field="models",
            )


def _reachable(name: str, graph: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(graph.get(name, []))
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(graph.get(current, []))
    return found


def combo_validate(combo: Combo) -> None:
    """Normalise and check a combo before it is saved; InvalidInput names the wire field."""
    combo.name = _clean_name(combo.name)
    if Combo.objects.filter(name=combo.name).exclude(pk=combo.pk).exists():
        raise InvalidInput(f"A combo named {combo.name!r} already exists", field="name")
    old_name = Combo.objects.filter(pk=combo.pk).values_list("name", flat=True).first() if combo.pk else None
    if old_name and old_name != combo.name:
        users = combo_referrers(name=old_name)
        if users:
            raise InvalidInput(f"Cannot rename combo {old_name!r}: used by combo {', '.join(users)}", field="name")
    if combo.strategy not in dict(Combo.STRATEGIES):
        raise InvalidInput(f"strategy must be one of {', '.join(dict(Combo.STRATEGIES))}", field="strategy")
    combo.config = _clean_config(combo.config)
    combo_names = set(Combo.objects.exclude(pk=combo.pk).values_list("name", flat=True)) | {combo.name}
    combo.members = _clean_members(combo.members, combo_names=combo_names)
    _check_nesting(combo)
    combo.full_clean()


def combo_create(
    *,
    name: str,
    members: list[Any],
    strategy: str = "priority",
    config: dict[str, Any] | None = None,
    is_active: bool = True,
    sort_order: int | None = None,
) -> Combo:
    """A new combo; without `sort_order` it goes after the existing ones."""
    with transaction.atomic():
        if sort_order is None:
            sort_order = (Combo.objects.aggregate(top=Max("sort_order"))["top"] or 0) + 1
        combo = Combo(
            name=name,
            members=members,
            strategy=strategy,
            config={} if config is None else config,
            is_active=is_active,
            sort_order=sort_order,
        )
        combo_validate(combo)
        combo.save()
    return combo


def combo_update(*, combo: Combo, data: Mapping[str, Any]) -> Combo:
    unknown = set(data) - COMBO_EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a combo", field=sorted(unknown)[0])
    with transaction.atomic():
        for field, value in data.items():
            setattr(combo, field, value)
        combo_validate(combo)
        combo.save()
    return combo


def combo_delete(*, combo: Combo) -> None:
    users = combo_referrers(name=combo.name)
    if users:
        raise InvalidInput(
            f"Cannot delete combo {combo.name!r}: used by combo {', '.join(users)}; remove it there first"
        )
    combo.delete()

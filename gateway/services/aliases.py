"""Writes of model aliases: a bare name (or a glob of bare names) that routes to `provider/model`."""

from __future__ import annotations

import re

from providers.catalog import Catalog
from providers.selectors import catalog_current

from ..api.errors import InvalidInput
from ..models import Combo, ModelAlias

# No "/" (a name with a slash is provider/model, never looked up as an alias) and no
# brackets: the only wildcards are `*` and `?`.
ALIAS_RE = re.compile(r"^[^\s/\[\]\x00-\x1f\x7f]{1,200}$")
TARGET_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,300}$")


def provider_model_check(value: str, *, field: str, catalog: Catalog | None = None) -> str:
    """`value` stripped, if it is `provider/model` with a known provider (id, alias or node
    prefix, as the data plane resolves it; a node's numeric id is not a prefix)."""
    value = value.strip()
    provider, slash, model = value.partition("/")
    if not TARGET_RE.match(value) or not slash or not provider or not model:
        raise InvalidInput(f"{field}: {value[:100]!r} is not provider/model, e.g. openai/gpt-4o", field=field)
    if (catalog or catalog_current()).resolve_provider(provider) is None:
        raise InvalidInput(f"{field}: unknown provider {provider!r} in {value[:100]!r}", field=field)
    return value


def alias_validate(*, alias: str, model: str) -> tuple[str, str]:
    """The alias and its target, normalised; InvalidInput naming the field otherwise."""
    alias = alias.strip()
    if not ALIAS_RE.match(alias):
        raise InvalidInput(
            "alias must be 1-200 characters without spaces, '/' or brackets ('*' and '?' are wildcards)",
            field="alias",
        )
    if Combo.objects.filter(name=alias).exists():
        raise InvalidInput(f"alias {alias!r} is the name of a combo, which would always win", field="alias")
    return alias, provider_model_check(model, field="model")


def alias_set(*, alias: str, model: str) -> tuple[ModelAlias, bool]:
    """Create the alias or point it at a new model; (row, created)."""
    alias, model = alias_validate(alias=alias, model=model)
    row, created = ModelAlias.objects.update_or_create(alias=alias, defaults={"model": model})
    return row, created


def alias_update(*, alias: ModelAlias, new_alias: str, model: str) -> ModelAlias:
    """Rename and/or retarget one alias (the admin edits a row; the API upserts by name)."""
    name, target = alias_validate(alias=new_alias, model=model)
    if ModelAlias.objects.filter(alias=name).exclude(pk=alias.pk).exists():
        raise InvalidInput(f"The alias {name!r} already exists", field="alias")
    alias.alias, alias.model = name, target
    alias.save()
    return alias


def alias_delete(*, alias: ModelAlias) -> None:
    alias.delete()

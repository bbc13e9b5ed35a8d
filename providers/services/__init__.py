"""Writes of the providers app, one module per concern; import them from here.

Snapshot invalidation happens in model signals (providers/signals.py), not here.
"""

from .connections import (
    CONNECTION_EDITABLE_FIELDS,
    TEST_ERROR,
    TEST_OK,
    ProbeResult,
    base_url_normalize,
    connection_create,
    connection_delete,
    connection_test,
    connection_update,
    provider_validate,
)
from .custom import (
    NODE_EDITABLE_FIELDS,
    PROVIDER_MODEL_EDITABLE_FIELDS,
    node_create,
    node_delete,
    node_update,
    node_validate,
    provider_model_delete,
    provider_model_set,
    provider_model_update,
    provider_model_validate,
)

__all__ = [
    "CONNECTION_EDITABLE_FIELDS",
    "NODE_EDITABLE_FIELDS",
    "PROVIDER_MODEL_EDITABLE_FIELDS",
    "TEST_ERROR",
    "TEST_OK",
    "ProbeResult",
    "base_url_normalize",
    "connection_create",
    "connection_delete",
    "connection_test",
    "connection_update",
    "node_create",
    "node_delete",
    "node_update",
    "node_validate",
    "provider_model_delete",
    "provider_model_set",
    "provider_model_update",
    "provider_model_validate",
    "provider_validate",
]

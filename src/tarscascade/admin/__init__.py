"""HTTP surfaces: the registry admin API (JSON under /v1), the node agent's read API,
health, Prometheus metrics."""

from tarscascade.admin.guard import UnsafeListenError, check_listen_safety
from tarscascade.admin.metrics import RegistryMetrics
from tarscascade.admin.node_api import create_node_app
from tarscascade.admin.node_metrics import NodeMetrics
from tarscascade.admin.registry_api import create_registry_app

__all__ = [
    "NodeMetrics",
    "RegistryMetrics",
    "UnsafeListenError",
    "check_listen_safety",
    "create_node_app",
    "create_registry_app",
]

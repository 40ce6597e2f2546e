"""HTTP surfaces: the registry admin API (JSON under /v1), health, Prometheus metrics."""

from tarscascade.admin.guard import UnsafeListenError, check_listen_safety
from tarscascade.admin.metrics import RegistryMetrics
from tarscascade.admin.registry_api import create_registry_app

__all__ = ["RegistryMetrics", "UnsafeListenError", "check_listen_safety", "create_registry_app"]

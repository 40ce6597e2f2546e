"""Python client SDK: resolve through the local node, balance, shield failures, call servants.

Layer ``client``: imports only ``transport``, ``wire``, ``errors`` and ``model``.
"""

from tarscascade.client.balance import Addr, Balancer, addr_of
from tarscascade.client.communicator import Communicator, CommunicatorOptions
from tarscascade.client.host import DEFAULT_NODE, HostOptions, ServantHost
from tarscascade.client.lkg import EndpointList, LkgFile
from tarscascade.client.locator import (
    DEFAULT_LOCATOR,
    DEFAULT_NODE_LOCATOR,
    DEFAULT_REGISTRY_LOCATOR,
    LocatorClient,
    LocatorError,
    Query,
)
from tarscascade.client.proxy import EndpointPool, InvokeResult, ServantProxy
from tarscascade.client.resolver import Resolver, ResolverOptions, StaticResolver
from tarscascade.client.shield import Outcome, Reason, Shield, ShieldOptions
from tarscascade.wire.idl.queryf import (
    OBJECT_CHANGED,
    decode_object_changed,
    encode_object_changed,
)
from tarscascade.wire.idl.serverf import ENDPOINT_CONTEXT_KEY

__all__ = [
    "DEFAULT_LOCATOR",
    "DEFAULT_NODE",
    "DEFAULT_NODE_LOCATOR",
    "DEFAULT_REGISTRY_LOCATOR",
    "ENDPOINT_CONTEXT_KEY",
    "OBJECT_CHANGED",
    "Addr",
    "Balancer",
    "Communicator",
    "CommunicatorOptions",
    "EndpointList",
    "EndpointPool",
    "HostOptions",
    "InvokeResult",
    "LkgFile",
    "LocatorClient",
    "LocatorError",
    "Outcome",
    "Query",
    "Reason",
    "Resolver",
    "ResolverOptions",
    "ServantHost",
    "ServantProxy",
    "Shield",
    "ShieldOptions",
    "StaticResolver",
    "addr_of",
    "decode_object_changed",
    "encode_object_changed",
]

"""The only asyncio socket code: a TARS server hosting servants, and a channel (client)."""

from tarscascade.transport.backoff import Backoff
from tarscascade.transport.channel import Channel, ChannelOptions
from tarscascade.transport.servant import Current, InterfaceServant, RawServant, Servant
from tarscascade.transport.server import ServerOptions, TarsServer
from tarscascade.transport.tls import TlsConfig, cert_name

__all__ = [
    "Backoff",
    "Channel",
    "ChannelOptions",
    "Current",
    "InterfaceServant",
    "RawServant",
    "Servant",
    "ServerOptions",
    "TarsServer",
    "TlsConfig",
    "cert_name",
]

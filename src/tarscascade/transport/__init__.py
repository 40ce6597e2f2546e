"""The only asyncio socket code: a TARS server hosting servants, and a channel (client)."""

from tarscascade.transport.backoff import Backoff
from tarscascade.transport.channel import Channel, ChannelOptions
from tarscascade.transport.servant import Current, InterfaceServant, RawServant, Servant
from tarscascade.transport.server import ServerOptions, TarsServer

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
]

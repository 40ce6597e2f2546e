"""The Hello servant's interface, shared by server.py and client.py.

IDL equivalent::

    module Test { interface Hello { string hello(string name); }; };
"""

from __future__ import annotations

from tarscascade.wire.codec import STRING
from tarscascade.wire.interface import Interface, Method, Param

OBJ = "Test.HelloServer.HelloObj"
HELLO = Method("hello", (Param("name", STRING),), STRING)
HELLO_IFACE = Interface.of("Hello", HELLO)

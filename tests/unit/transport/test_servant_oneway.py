"""A one-way call's servant runs, and its result, which nobody receives, is not encoded."""

from __future__ import annotations

import asyncio

import pytest

from tarscascade.transport import Current, InterfaceServant
from tarscascade.wire.codec import INT32_K
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import NORMAL, ONEWAY, TARS_VERSION, RequestPacket, Ret

COUNT = Method("count", (Param("n", INT32_K),), INT32_K)
IFACE = Interface.of("Counter", COUNT)


class Impl:
    """Counts its calls and answers what INT32 cannot carry: encoding it fails."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def count(self, _current: Current, n: int) -> int:
        self.calls.append(n)
        return 2**40


class AsyncImpl(Impl):
    async def count(self, _current: Current, n: int) -> int:  # type: ignore[override]
        self.calls.append(n)
        return 2**40


def call(servant: InterfaceServant, packet_type: int) -> object:
    req = RequestPacket(
        iVersion=TARS_VERSION,
        cPacketType=packet_type,
        sFuncName="count",
        sBuffer=COUNT.encode_args(7),
    )
    return servant.dispatch(Current(req, ("127.0.0.1", 1), None))  # type: ignore[arg-type]


@pytest.mark.parametrize("impl_type", [Impl, AsyncImpl])
def test_a_one_way_result_is_not_encoded(impl_type: type[Impl]) -> None:
    impl = impl_type()
    servant = InterfaceServant("Test.Counter.Obj", IFACE, impl)

    def run(packet_type: int) -> object:
        result = call(servant, packet_type)
        if asyncio.iscoroutine(result):
            return asyncio.run(result)
        return result

    ret, _body, desc = run(NORMAL)  # type: ignore[misc]
    assert ret == Ret.SERVER_ENCODE_ERR, desc  # the answer cannot be encoded...
    assert run(ONEWAY) == (Ret.SUCCESS, b"", "")  # ...and one-way, it is never tried
    assert impl.calls == [7, 7]  # the servant ran both times

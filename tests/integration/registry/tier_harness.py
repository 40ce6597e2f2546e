"""A tier of registries on one database with node agents spread over them, in process."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import Category, NodeRecord, State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.testing import eventually

#: a bound for a loaded machine, not an expectation of speed
WAIT = 30.0
FAST = ClientOptions(heartbeat_interval=0.3, reconnect_initial=0.05, reconnect_max=0.3)
#: short liveness figures so a test sees several timeouts: sightings every timeout / 3
TIER = RegistryOptions(
    tail_interval=0.1,
    reload_interval=0,
    node_timeout=3.0,
    liveness_interval=0.5,
    lease_ttl=1.5,
)


@dataclass
class Tier:
    registries: list[RegistryProcess]
    nodes: dict[str, NodeAgent] = field(default_factory=dict)

    def core(self, i: int) -> RegistryCore:
        core = self.registries[i].core
        assert core is not None
        return core

    def admin(self, i: int) -> RegistryAdmin:
        return RegistryAdmin(self.core(i), hub=self.registries[i].hub)

    def port(self, i: int) -> int:
        return self.registries[i].tars_port

    def judges(self) -> list[int]:
        return [
            i
            for i, rp in enumerate(self.registries)
            if rp.core is not None and rp.core.tier is not None and rp.core.tier.is_judge
        ]

    def record(self, node: str, i: int = 0) -> NodeRecord | None:
        rec: NodeRecord | None = self.core(i).catalog.get_node(node)
        return rec

    async def add_node(
        self, name: str, upstreams: Sequence[tuple[str, int]], **config: object
    ) -> NodeAgent:
        agent = NodeAgent(
            NodeConfig(
                name=name,
                upstreams=list(upstreams),
                listen=("127.0.0.1", 0),
                report_interval=0.1,
                client_options=FAST,
                **config,  # type: ignore[arg-type]
            )
        )
        self.nodes[name] = agent
        await agent.start()
        assert agent.client is not None
        await eventually(agent.client.synced.is_set, timeout=WAIT, what=f"{name} synced")
        return agent

    async def add_node_on(self, name: str, i: int) -> NodeAgent:
        """A node whose first upstream is registry ``i`` (the others follow as failover)."""
        n = len(self.registries)
        order = [("127.0.0.1", self.port((i + k) % n)) for k in range(n)]
        return await self.add_node(name, order)

    async def registered_everywhere(self, names: Sequence[str]) -> None:
        for i in range(len(self.registries)):
            for name in names:
                await eventually(
                    lambda i=i, name=name: (
                        (r := self.record(name, i)) is not None and r.present_state is State.ACTIVE
                    ),
                    timeout=WAIT,
                    what=f"{name} registered and alive at registry {i}",
                )

    async def converged(self) -> None:
        """Every registry and node holds the same objects version."""
        for i in range(len(self.registries)):
            await self.core(i).catch_up()
        want = max(
            self.core(i).catalog.version(Category.OBJECTS) for i in range(len(self.registries))
        )
        for agent in self.nodes.values():
            await eventually(
                lambda a=agent: a.catalog.version(Category.OBJECTS) == want,
                timeout=WAIT,
                what=f"{agent.config.name} at {want}",
            )


@contextlib.asynccontextmanager
async def tier(
    db_url: str, size: int, options: RegistryOptions = TIER, *, http: bool = False
) -> AsyncIterator[Tier]:
    """``size`` registries on ``db_url`` (the first creates the schema); all stopped after."""
    t = Tier([])
    try:
        for _ in range(size):
            rp = RegistryProcess(
                RegistryConfig(
                    db=db_url,
                    listen=("127.0.0.1", 0),
                    http=("127.0.0.1", 0) if http else None,
                    init=True,
                    options=dataclasses.replace(options),
                )
            )
            t.registries.append(rp)
            await rp.start()
        yield t
    finally:
        for agent in t.nodes.values():
            await agent.aclose()
        for rp in t.registries:
            await rp.aclose()

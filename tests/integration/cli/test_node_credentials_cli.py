"""``tarscascade node add`` issues a node secret (shown once, or written to a 0600 file),
the node agent reads it with ``--token-file`` (never on its command line), and ``node rm``
revokes it."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

from tarscascade.catalog.announce import announce_setting
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tests.integration.cli.test_cli import ok, run_cli

ADMIN = "cli-admin-token"


async def test_node_add_issues_a_secret_the_agent_reads_from_a_file(tmp_path: Path) -> None:
    rp = RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/registry.db",
            listen=("127.0.0.1", 0),
            http=("127.0.0.1", 0),
            token=ADMIN,
            node_auth=True,
            options=RegistryOptions(tail_interval=0.05, reload_interval=0),
        )
    )
    await rp.start()
    env = {"TARSCASCADE_REGISTRY": f"http://127.0.0.1:{rp.http_port}", "TARSCASCADE_TOKEN": ADMIN}
    agent: asyncio.subprocess.Process | None = None
    try:
        assert rp.authority is not None
        assert rp.core is not None
        assert rp.hub is not None
        core, hub, authority = rp.core, rp.hub, rp.authority
        # shown once on stdout
        out = ok(await run_cli("node", "add", "n0", env=env))
        secret0 = out.strip().splitlines()[-1]
        assert authority.authenticate("n0", secret0)
        # or written to a file only its owner reads, with hosts pinned and an allow-list
        path = tmp_path / "n1.secret"
        args = ["node", "add", "n1", "--host", "127.0.0.1", "--allow", "Test.*"]
        out = ok(await run_cli(*args, "--secret-file", str(path), env=env))
        assert "written to" in out
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret1 = path.read_text().strip()
        assert secret1 not in out
        assert authority.authenticate("n1", secret1)
        assert authority.hosts_of("n1") == ("127.0.0.1",)
        assert core.catalog.get_setting(announce_setting("n1")) == "Test.*"
        # the agent: the secret comes from the file, not its arguments (ps shows those)
        cmd = [
            sys.executable,
            "-m",
            "tarscascade.cli",
            "node",
            "--name",
            "n1",
            "--upstream",
            f"127.0.0.1:{rp.tars_port}",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "off",
            "--token-file",
            str(path),
        ]
        assert secret1 not in " ".join(cmd)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TARSCASCADE_")}
        agent = await asyncio.create_subprocess_exec(
            *cmd, env=clean, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await eventually(
            lambda: hub.node_states().get("n1") is not None and hub.node_states()["n1"].connected,
            timeout=30,
            what="the agent subscribed with its file's secret",
        )
        # node rm revokes: the session ends
        ok(await run_cli("node", "rm", "n1", env=env))
        assert authority.credential("n1") is None
        await eventually(lambda: not hub.node_states()["n1"].connected, what="session ended")
    finally:
        if agent is not None:
            agent.terminate()
            await asyncio.wait_for(agent.wait(), 10)
        await rp.aclose()

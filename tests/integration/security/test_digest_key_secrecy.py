"""The tier's digest key stays a secret of the cascade: a real registry (its key in the
database) and a node agent that took the key (kept in ``digest.key`` beside its disk
copy), both with their HTTP APIs, answer every status, listing, metrics, schema and
dashboard page without the key in any form (hex, base64, urlsafe base64, the raw bytes),
and no log record of either holds it."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import httpx
import pytest

from tarscascade.cli.runtime import NodeProcess
from tarscascade.model import EndpointRecord
from tarscascade.node.snapshot_file import KEY_FILE
from tarscascade.testing import eventually
from tests.integration.security.fleet import HELLO, node_config, put, registry

ADMIN = "admin-token-of-the-digest-key-test"
WAIT = 30.0
AUTH = {"Authorization": f"Bearer {ADMIN}"}

REGISTRY_PATHS = (
    "/v1/status",
    "/v1/nodes",
    "/v1/nodes/node-1",
    f"/v1/objects/{HELLO}",
    "/metrics",
    "/openapi.json",
    "/healthz",
    "/",
    "/ui/tree",
    "/ui/objects",
    f"/ui/objects/{HELLO}",
)
NODE_PATHS = ("/", "/status", "/metrics", "/healthz", f"/v1/objects/{HELLO}")


def key_forms(key: bytes) -> list[str]:
    """Every way the key could be written out: hex (either case), base64 and urlsafe
    base64 (with and without padding), the raw bytes as latin-1 text."""
    b64, url = base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()
    return [
        key.hex(),
        key.hex().upper(),
        key.hex()[:24],  # nor a part of it
        b64,
        b64.rstrip("="),
        url,
        url.rstrip("="),
        key.decode("latin-1"),
    ]


def _record_texts(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    """(where, text) of every record: its message, its arguments, its traceback."""
    out = []
    for i, r in enumerate(records):
        text = [r.getMessage(), repr(r.args)]
        if r.exc_info:
            text.append(logging.Formatter().formatException(r.exc_info))
        out.append((f"log record {i} ({r.name}, {r.levelname})", "\n".join(text)))
    return out


def assert_no_key(key: bytes, where: str, text: str, raw: bytes = b"") -> None:
    # pytest.fail, not assert: a failing comparison would print the key
    for n, form in enumerate(key_forms(key)):
        if form in text:
            pytest.fail(f"{where} holds the digest key (form {n} of key_forms)")
    if key in raw:
        pytest.fail(f"{where} holds the digest key's bytes")


async def test_the_digest_key_is_in_no_answer_and_no_log_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rp = registry(tmp_path, node_auth=True, token=ADMIN, http=("127.0.0.1", 0))
    await rp.start()
    try:
        assert rp.authority is not None
        assert rp.core is not None
        assert rp.store is not None
        core, store = rp.core, rp.store
        key = await asyncio.to_thread(store.digest_key)
        assert len(key) == 32
        assert core.catalog.digest_key == key
        secret = await rp.authority.issue("node-1")
        await put(core, EndpointRecord(HELLO, "127.0.0.1", 7300, node_name="node-1"))
        data = tmp_path / "node-1"
        node = NodeProcess(
            node_config("node-1", rp, token=secret, data_dir=data), http=("127.0.0.1", 0)
        )
        await node.start()
        try:
            agent = node.agent
            # the node took the key (so a leak on its side would show) and keeps it
            await eventually(
                lambda: (
                    agent.catalog.digest_key == key
                    and bool(agent.catalog.get_object(HELLO))
                    and (data / KEY_FILE).exists()
                ),
                timeout=WAIT,
                what="the node has the key, the object and digest.key",
            )
            assert (data / KEY_FILE).stat().st_mode & 0o777 == 0o600
            answers: dict[str, httpx.Response] = {}
            async with httpx.AsyncClient(headers=AUTH, timeout=WAIT) as http:
                for base, paths in (
                    (f"http://127.0.0.1:{rp.http_port}", REGISTRY_PATHS),
                    (f"http://127.0.0.1:{node.http_port}", NODE_PATHS),
                ):
                    for path in paths:
                        r = await http.get(base + path)
                        assert r.status_code == 200, (base + path, r.status_code, r.text)
                        answers[base + path] = r
            for where, r in answers.items():
                assert r.text  # something was said
                assert_no_key(key, where, r.text, r.content)
        finally:
            await node.aclose()
    finally:
        await rp.aclose()
    texts = _record_texts(caplog.records)
    assert len(texts) > 10  # the scenario did log
    for where, text in texts:
        assert_no_key(key, where, text)

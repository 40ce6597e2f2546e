"""Node secrets, proofs, and the registry's NodeAuthority decisions (pure; a fake clock)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tarscascade.auth import (
    CLOCK_SKEW_S,
    PROOF_MAX_AGE_S,
    PURPOSE_RELAYED,
    PURPOSE_REPORT,
    NodeIdentity,
    credential_equal,
    is_node_secret,
    make_proof,
    new_node_secret,
    node_key,
    parse_proof,
    read_secret_file,
    secret_matches,
    verify_proof,
)
from tarscascade.registry.node_auth import NodeAuthority
from tarscascade.store import NodeCredential
from tarscascade.wire.idl.cascadef import NodeAckF
from tarscascade.wire.idl.reportf import EndpointStateF, ReportStatesReq

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


class FakeTable:
    """CredentialTable's interface over a dict (the SQL one has its own tests)."""

    def __init__(self) -> None:
        self.rows: dict[str, NodeCredential] = {}

    def load_all(self) -> list[NodeCredential]:
        return list(self.rows.values())

    def put(self, cred: NodeCredential) -> NodeCredential:
        self.rows[cred.name] = cred
        return cred

    def delete(self, name: str) -> bool:
        return self.rows.pop(name, None) is not None


def test_secrets_are_random_prefixed_and_stored_as_their_hash() -> None:
    a, b = new_node_secret(), new_node_secret()
    assert a != b
    assert is_node_secret(a)
    assert not is_node_secret("shared-token")
    assert len(a) > 40
    key = node_key(a)
    assert key == hashlib.sha256(b"tarscascade node key v1\x00" + a.encode()).digest()
    assert a.encode() not in key
    assert secret_matches(a, key)
    assert not secret_matches(b, key)
    assert not secret_matches("", key)
    assert not secret_matches("x" * 10_000, key)


def test_credential_equal() -> None:
    assert credential_equal("abc", "abc")
    assert credential_equal(b"abc", "abc")
    assert not credential_equal("abc", "abd")
    assert not credential_equal("", "a")


def test_secret_file(tmp_path: Path) -> None:
    p = tmp_path / "secret"
    p.write_text("tcn1_abc\n# comment\n")
    assert read_secret_file(p) == "tcn1_abc"
    p.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_secret_file(p)
    p.write_text("s" * 600)
    with pytest.raises(ValueError, match="does not hold a credential") as exc:
        read_secret_file(p)
    assert "s" * 20 not in str(exc.value)  # never echoes the content
    with pytest.raises(ValueError, match="cannot read"):
        read_secret_file(tmp_path / "missing")


def test_a_proof_binds_purpose_name_audience_time_and_content() -> None:
    key = node_key(new_node_secret())
    text = make_proof(key, PURPOSE_RELAYED, "leaf", "relay-1", 1234)
    p = parse_proof(text)
    assert p is not None
    assert (p.purpose, p.audience, p.issued_ms) == (PURPOSE_RELAYED, "relay-1", 1234)
    assert verify_proof(key, p, "leaf")
    assert not verify_proof(key, p, "other-leaf")
    assert not verify_proof(node_key(new_node_secret()), p, "leaf")
    for forged in (
        text.replace("relay-1", "relay-2"),
        text.replace("/1234/", "/1235/"),
        text.replace(PURPOSE_RELAYED, PURPOSE_REPORT),
    ):
        fp = parse_proof(forged)
        assert fp is not None
        assert not verify_proof(key, fp, "leaf")
    rep = parse_proof(make_proof(key, PURPOSE_REPORT, "leaf", "", 5, b"digest-a"))
    assert rep is not None
    assert verify_proof(key, rep, "leaf", b"digest-a")
    assert not verify_proof(key, rep, "leaf", b"digest-b")
    for junk in ("", "tcp1/", "tcp1/relayed/a/1/short", "tcn1_secret", "x" * 300):
        assert parse_proof(junk) is None


def test_the_identity_sends_secrets_to_registries_and_proofs_to_relays() -> None:
    secret = new_node_secret()
    registry, relay = ("10.0.0.1", 17890), ("10.0.0.2", 19386)
    ident = NodeIdentity("leaf", secret, {relay: "relay-1"}, clock=Clock())
    assert ident.subscribe_token(registry) == secret
    assert ident.heartbeat_proof(registry) == ""
    tok = ident.subscribe_token(relay)
    assert secret not in tok
    p = parse_proof(tok)
    assert p is not None
    assert (p.audience, p.purpose) == ("relay-1", PURPOSE_RELAYED)
    r1 = parse_proof(ident.report_token(relay, []))
    r2 = parse_proof(ident.report_token(relay, []))
    assert r1 is not None
    assert r2 is not None
    assert r2.issued_ms > r1.issued_ms  # strictly growing, even within one millisecond
    # the shared-token mode: the token everywhere
    shared = NodeIdentity("leaf", "shared", {relay: "relay-1"})
    assert shared.subscribe_token(relay) == "shared"


async def _authority() -> tuple[NodeAuthority, Clock, dict[str, str]]:
    clock = Clock()
    table = FakeTable()
    auth = NodeAuthority("node", credentials=table, clock=clock)  # type: ignore[arg-type]
    secrets = {n: await auth.issue(n) for n in ("relay-1", "relay-2", "leaf", "deep")}
    return auth, clock, secrets


def _ack(name: str, proof: str = "") -> NodeAckF:
    return NodeAckF(nodeName=name, proof=proof)


async def test_subscribes_need_the_nodes_own_secret() -> None:
    auth, _clock, secrets = await _authority()
    assert auth.authenticate("leaf", secrets["leaf"])
    assert not auth.authenticate("leaf", secrets["relay-1"])  # another node's secret
    assert not auth.authenticate("ghost", secrets["leaf"])  # no credential at all
    assert not auth.authenticate("leaf", "")
    relayed = make_proof(node_key(secrets["leaf"]), PURPOSE_RELAYED, "leaf", "relay-1", 1)
    assert not auth.authenticate("leaf", relayed)  # a proof is no secret
    assert auth.stats.subscribe_refused == 4


async def test_reissue_and_revoke_end_the_old_secret() -> None:
    auth, _clock, secrets = await _authority()
    ended: list[str] = []
    auth.add_revoked_listener(ended.append)
    new = await auth.issue("leaf")
    assert not auth.authenticate("leaf", secrets["leaf"])
    assert auth.authenticate("leaf", new)
    assert await auth.revoke("leaf")
    assert not auth.authenticate("leaf", new)
    assert ended == ["leaf", "leaf"]


async def test_relays_claim_only_descendants_with_fresh_proofs_naming_them() -> None:
    auth, clock, secrets = await _authority()
    ms = int(NOW * 1000)

    def proof(name: str, relay: str, at: int = ms) -> str:
        return make_proof(node_key(secrets[name]), PURPOSE_RELAYED, name, relay, at)

    good = _ack("leaf", proof("leaf", "relay-1"))
    assert auth.authorize_descendants("relay-1", [good]) == {"leaf"}
    # the same proof claimed by another relay, no proof, a forged one, a stale one
    assert auth.authorize_descendants("relay-2", [good]) == set()
    assert auth.authorize_descendants("relay-1", [_ack("leaf")]) == set()
    assert auth.authorize_descendants("relay-1", [_ack("ghost", proof("leaf", "relay-1"))]) == set()
    old = ms - int((PROOF_MAX_AGE_S + 1) * 1000)
    assert (
        auth.authorize_descendants("relay-1", [_ack("leaf", proof("leaf", "relay-1", old))])
        == set()
    )
    future = ms + int((CLOCK_SKEW_S + 5) * 1000)
    assert (
        auth.authorize_descendants("relay-1", [_ack("leaf", proof("leaf", "relay-1", future))])
        == set()
    )
    # a tree: relay-1 <- relay-2 <- deep, listed deepest first
    chain = [_ack("deep", proof("deep", "relay-2")), _ack("relay-2", proof("relay-2", "relay-1"))]
    assert auth.authorize_descendants("relay-1", chain) == {"deep", "relay-2"}
    # a leaf that left: its last proof ages out and the relay's claim stops counting
    clock.t += PROOF_MAX_AGE_S + 1
    assert auth.authorize_descendants("relay-1", [good]) == set()
    assert auth.stats.descendants_refused >= 6


async def test_relayed_reports_are_bound_to_content_and_never_replayed() -> None:
    auth, _clock, secrets = await _authority()
    ident = NodeIdentity("leaf", secrets["leaf"], {("r", 1): "relay-1"}, clock=_clock)
    st = [EndpointStateF("A.B.C", "10.0.0.1", 1, "active")]
    covered = [(s.objectId, s.host, s.port, s.state, s.endpoint, s.version) for s in st]
    token = ident.report_token(("r", 1), covered)
    assert auth.check_report(ReportStatesReq("leaf", token, st))
    assert not auth.check_report(ReportStatesReq("leaf", token, st))  # replayed
    token2 = ident.report_token(("r", 1), covered)
    altered = [EndpointStateF("A.B.C", "10.0.0.1", 1, "inactive")]
    assert not auth.check_report(ReportStatesReq("leaf", token2, altered))  # altered
    assert not auth.check_report(ReportStatesReq("relay-1", token2, st))  # another name
    assert auth.check_report(ReportStatesReq("leaf", token2, st))
    assert auth.check_report(ReportStatesReq("leaf", secrets["leaf"], st))  # direct
    assert not auth.check_report(ReportStatesReq("leaf", secrets["relay-1"], st))


def test_the_shared_and_open_modes_say_what_they_are() -> None:
    shared = NodeAuthority("shared", shared_token="tok")
    assert shared.authenticate("anyone", "tok")  # any holder, any name: bootstrap/dev
    assert not shared.authenticate("anyone", "tok2")
    assert not shared.authenticate("anyone", "")
    assert shared.authorize_descendants("r", [_ack("x")]) == {"x"}
    assert NodeAuthority("open").authenticate("anyone", "")
    with pytest.raises(ValueError, match="needs a token"):
        NodeAuthority("shared")
    with pytest.raises(ValueError, match="credential table"):
        NodeAuthority("node")

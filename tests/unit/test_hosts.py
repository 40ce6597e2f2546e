"""wire/hosts.py: how HOST:PORT text splits (one rule for the CLI and the node agent)."""

from __future__ import annotations

import pytest

from tarscascade.wire.hosts import split_host_port


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("10.0.0.1:19386", ("10.0.0.1", "19386")),
        (" host.example:80 ", ("host.example", "80")),
        ("host", ("host", "")),
        (":17890", ("", "17890")),
        ("[::1]:19386", ("::1", "19386")),
        ("[fe80::1]", ("fe80::1", "")),
        ("fe80::1", ("fe80::1", "")),  # a bare IPv6 address is all host
    ],
)
def test_split_host_port(text: str, want: tuple[str, str]) -> None:
    assert split_host_port(text) == want

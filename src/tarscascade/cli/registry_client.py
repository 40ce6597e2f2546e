"""What the registry commands share: the admin API client, exit codes, output.

Exit codes are part of the CLI's contract (scripts branch on them): 0 done, 1 the
registry refused the request (any HTTP error answer, or a TARS error code), 2 usage
(bad arguments, found before anything is sent), 3 the registry could not be reached,
4 a drain was done but some nodes did not acknowledge it in time. Every failure is one
line on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.table import Table

from tarscascade.errors import EndpointSyntaxError
from tarscascade.wire.endpoint import Endpoint, parse_endpoint

DEFAULT_REGISTRY = "http://127.0.0.1:17880"
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INCOMPLETE = 4
HTTP_TIMEOUT = 10.0

RegistryOpt = Annotated[
    str,
    typer.Option(
        "--registry",
        envvar="TARSCASCADE_REGISTRY",
        help="Admin API of the registry.",
        metavar="URL",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TARSCASCADE_TOKEN",
        help="Admin token (sent as Authorization: Bearer).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int) -> NoReturn:
    # typer.echo, not rich: one plain line, never wrapped or styled
    typer.echo(f"tarscascade: {message}", err=True)
    raise typer.Exit(code)


def parse_endpoint_arg(text: str) -> Endpoint:
    """A TARS endpoint string given on the command line; a bad one is a usage error."""
    try:
        return parse_endpoint(text)
    except EndpointSyntaxError as exc:
        fail(str(exc), EXIT_USAGE)


def path(*segments: str | int) -> str:
    """``/v1/a/b`` with each segment percent-encoded (hosts may be IPv6 literals)."""
    return "/v1/" + "/".join(quote(str(s), safe="") for s in segments)


class AdminClient:
    """One synchronous request per call; errors become the CLI's exit codes."""

    def __init__(self, registry: str, token: str | None = None) -> None:
        self.base = registry.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, url_path: str) -> Any:
        return self.request("GET", url_path)

    def request(
        self, method: str, url_path: str, body: Any = None, *, timeout: float = HTTP_TIMEOUT
    ) -> Any:
        url = self.base + url_path
        try:
            rsp = httpx.request(
                method,
                url,
                json=body,
                headers=self.headers,
                timeout=timeout,
                follow_redirects=False,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            fail(f"cannot connect to the registry at {self.base}: {exc}", EXIT_UNREACHABLE)
        except httpx.TimeoutException:
            fail(
                f"the registry at {self.base} did not answer in {timeout:g} s",
                EXIT_UNREACHABLE,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            fail(f"bad --registry URL {self.base!r}: {exc}", EXIT_USAGE)
        except httpx.HTTPError as exc:
            fail(f"request to the registry at {self.base} failed: {exc}", EXIT_UNREACHABLE)
        try:
            data = rsp.json()
        except ValueError:
            data = None
        if rsp.status_code >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            text = message or rsp.text.strip()[:200] or rsp.reason_phrase
            fail(f"refused (HTTP {rsp.status_code}): {text}", EXIT_REFUSED)
        if data is None:
            fail(f"the registry answered {url} with something that is not JSON", EXIT_REFUSED)
        return data


# ---------------------------------------------------------------------------- output


def console() -> Console:
    # Piped output (grep, tests) gets a wide table rather than rich's 80-column default;
    # markup and highlighting are off because cells hold data, not rich markup.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=200 if wide else None, markup=False, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def say(line: str) -> None:
    typer.echo(line)


def write(
    registry: str, token: str | None, method: str, url: str, body: Any, as_json: bool, done: str
) -> None:
    """Send one write; print the registry's answer (--json) or ``done (revision N)``."""
    result = AdminClient(registry, token).request(method, url, body)
    if as_json:
        print_json(result)
    else:
        say(f"{done} (revision {result.get('revision')})")

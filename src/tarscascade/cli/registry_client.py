"""What the registry commands share: the admin API client, exit codes, options, output.

Exit codes are part of the CLI's contract (scripts branch on them; README "Exit codes"):

== =====================================================================================
0  done
1  the registry refused the request (an HTTP error answer other than "not found", or a
   TARS error code)
2  usage: bad arguments (option values, endpoint strings, object ids, token files),
   found before anything is sent
3  the registry (or the ``--via`` server) could not be reached or did not answer
4  a drain was done but some nodes did not acknowledge it in time
5  not found: the object, endpoint or record named does not exist (``--ignore-not-found``
   turns it into 0 on removals)
== =====================================================================================

Every failure is one line on stderr. Imports of httpx, rich and the wire layer happen
inside the functions that need them: ``tarscascade --help`` must not pay for them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import quote

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from tarscascade.wire.endpoint import Endpoint

DEFAULT_REGISTRY = "http://127.0.0.1:17880"
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INCOMPLETE = 4
EXIT_NOT_FOUND = 5
HTTP_TIMEOUT = 10.0
TOKEN_ENV = "TARSCASCADE_TOKEN"
#: the ``reason`` of a 404 that names a missing record (not a missing route)
NOT_FOUND_REASON = "not_found"

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
        envvar=TOKEN_ENV,
        help="Admin token (sent as Authorization: Bearer). Env: TARSCASCADE_TOKEN.",
        show_default=False,
        show_envvar=False,
    ),
]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="Read the token from this file (first line); beats TARSCASCADE_TOKEN.",
        metavar="PATH",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IgnoreNotFoundOpt = Annotated[
    bool,
    typer.Option(
        "--ignore-not-found", help="Exit 0 when it does not exist (an idempotent removal)."
    ),
]


def fail(message: str, code: int) -> NoReturn:
    # typer.echo, not rich: one plain line, never wrapped or styled
    typer.echo(f"tarscascade: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.echo(f"tarscascade: warning: {message}", err=True)


class NotFound(Exception):
    """A 404 for a record; raised instead of exiting when the caller asked to ignore it."""


# ---------------------------------------------------------------------------- arguments


def parse_endpoint_arg(text: str) -> Endpoint:
    """A TARS endpoint string given on the command line; a bad one is a usage error."""
    from tarscascade.errors import EndpointSyntaxError
    from tarscascade.wire.endpoint import parse_endpoint

    try:
        return parse_endpoint(text)
    except EndpointSyntaxError as exc:
        fail(str(exc), EXIT_USAGE)


def check_object_id(text: str) -> str:
    """``App.Server.Obj``, checked here so a typo is exit 2 before anything is sent."""
    from tarscascade.errors import EndpointSyntaxError
    from tarscascade.wire.endpoint import validate_object_id

    try:
        return validate_object_id(text)
    except EndpointSyntaxError as exc:
        fail(str(exc), EXIT_USAGE)


def check_node_name(text: str) -> str:
    """A node name, by the rule the registry and the cascade apply; else exit 2 here."""
    from tarscascade.model import node_name_error

    error = node_name_error(text)
    if error is not None:
        fail(error, EXIT_USAGE)
    return text


def user_endpoint(text: str) -> str:
    """How a message names an endpoint the user typed: ``tcp -h 10.0.0.1 -p 80``."""
    ep = parse_endpoint_arg(text)
    return f"{ep.transport} -h {ep.host} -p {ep.port}"


def read_token(token: str | None, token_file: Path | None) -> str | None:
    """The credential: ``--token-file`` beats the environment, ``--token`` beats both;
    giving ``--token`` and ``--token-file`` together is a usage error."""
    if token_file is None:
        return token or None
    if token and _given_on_command_line(token):
        fail("give --token or --token-file, not both", EXIT_USAGE)
    try:
        text = token_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read --token-file {str(token_file)!r}: {exc}", EXIT_USAGE)
    first = text.splitlines()[0].strip() if text.strip() else ""
    if not first:
        fail(f"--token-file {str(token_file)!r} is empty", EXIT_USAGE)
    return first


def _given_on_command_line(token: str) -> bool:
    # typer folds the environment into --token's value; equal to it means "from there"
    # (and if someone typed the same value, letting the file win changes nothing)
    return token != os.environ.get(TOKEN_ENV)


def path(*segments: str | int) -> str:
    """``/v1/a/b`` with each segment percent-encoded (hosts may be IPv6 literals)."""
    return "/v1/" + "/".join(quote(str(s), safe="") for s in segments)


# ---------------------------------------------------------------------------- the client


class AdminClient:
    """One synchronous request per call; errors become the CLI's exit codes."""

    def __init__(self, registry: str, token: str | None = None) -> None:
        self.base = registry.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, url_path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", url_path, params=params)

    def request(
        self,
        method: str,
        url_path: str,
        body: Any = None,
        *,
        timeout: float = HTTP_TIMEOUT,
        params: dict[str, Any] | None = None,
        not_found_ok: bool = False,
    ) -> Any:
        """The answer's JSON; a 404 for a record raises :class:`NotFound` when
        ``not_found_ok``, else every error exits with its code."""
        import httpx

        url = self.base + url_path
        with self._errors(timeout):
            rsp = httpx.request(
                method,
                url,
                json=body,
                params=params,
                headers=self.headers,
                timeout=timeout,
                follow_redirects=False,
            )
        try:
            data = rsp.json()
        except ValueError:
            data = None
        if rsp.status_code >= 400:
            self._refused(rsp.status_code, data, rsp.text, rsp.reason_phrase, not_found_ok)
        if data is None:
            fail(f"the registry answered {url} with something that is not JSON", EXIT_REFUSED)
        return data

    def stream_lines(
        self, method: str, url_path: str, body: Any, *, timeout: float
    ) -> Iterator[dict[str, Any]]:
        """POST and read the answer as JSON lines (``application/x-ndjson``), one
        object per line as the registry sends it."""
        import httpx

        headers = self.headers | {"Accept": "application/x-ndjson"}
        with (
            self._errors(timeout),
            httpx.stream(
                method, self.base + url_path, json=body, headers=headers, timeout=timeout
            ) as rsp,
        ):
            if rsp.status_code >= 400:
                rsp.read()
                try:
                    data = rsp.json()
                except ValueError:
                    data = None
                self._refused(rsp.status_code, data, rsp.text, rsp.reason_phrase, False)
            for line in rsp.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def _errors(self, timeout: float) -> Any:
        import contextlib

        import httpx

        @contextlib.contextmanager
        def mapped() -> Iterator[None]:
            try:
                yield
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

        return mapped()

    @staticmethod
    def _refused(status: int, data: Any, text: str, phrase: str, not_found_ok: bool) -> NoReturn:
        message = data.get("error") if isinstance(data, dict) else None
        reason = data.get("reason") if isinstance(data, dict) else None
        shown = message or text.strip()[:200] or phrase
        if status == 404 and reason == NOT_FOUND_REASON:
            if not_found_ok:
                raise NotFound(shown)
            fail(f"{shown} (HTTP 404)", EXIT_NOT_FOUND)
        fail(f"refused (HTTP {status}): {shown}", EXIT_REFUSED)


# ---------------------------------------------------------------------------- output


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    # Piped output (grep, tests) gets a wide table rather than rich's 80-column default;
    # markup and highlighting are off because cells hold data, not rich markup.
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(width=200 if wide else None, markup=False, highlight=False, stderr=stderr)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_json_line(data: Any) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def print_table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def say(line: str) -> None:
    typer.echo(line)


def write(
    registry: str,
    token: str | None,
    method: str,
    url: str,
    body: Any,
    as_json: bool,
    done: str,
    *,
    ignore_not_found: bool = False,
) -> None:
    """Send one write; print the registry's answer (--json) or ``done (revision N)``."""
    try:
        result = AdminClient(registry, token).request(
            method, url, body, not_found_ok=ignore_not_found
        )
    except NotFound as exc:
        if as_json:
            print_json({"revision": 0, "not_found": True, "error": str(exc)})
        else:
            say(f"{exc}: nothing to remove")
        return
    if as_json:
        print_json(result)
    else:
        say(f"{done} (revision {result.get('revision')})")

"""``tarscascade drain`` output: a live progress bar on a terminal, JSON lines with
``--json``, plain lines otherwise.

The registry streams the drain as JSON lines when asked (``Accept:
application/x-ndjson``): ``started`` (the revision written, the nodes waited for),
``progress`` whenever the count of acknowledgements moves, ``result`` last (the same
object the plain ``POST .../drain`` answers). Piped without ``--json`` the command keeps
the one-shot request and prints two lines, as before.
"""

from __future__ import annotations

import sys
from typing import Any

from tarscascade.cli.registry_client import (
    EXIT_INCOMPLETE,
    HTTP_TIMEOUT,
    AdminClient,
    console,
    fail,
    print_json_line,
    say,
)

#: how many missing nodes the progress line names
SHOWN_MISSING = 5


def run_drain(
    client: AdminClient,
    url: str,
    obj: str,
    endpoint: str,
    timeout: float,
    *,
    as_json: bool,
    force: bool = False,
    allow_offline: bool = False,
) -> None:
    body: dict[str, Any] = {"timeout": timeout, "force": force}
    budget = timeout + HTTP_TIMEOUT
    if as_json:
        result = _stream_json(client, url, body, budget)
    elif sys.stdout.isatty():
        result = _stream_tty(client, url, body, budget, obj, endpoint)
    else:
        result = client.request("POST", url, body, timeout=budget)
        _summary(result, obj, endpoint)
    if not result["complete"]:
        nodes, missing = result["nodes"], result["missing"]
        fail(
            f"{len(missing)} of {len(nodes)} nodes did not acknowledge revision"
            f" {result['revision']} within {timeout:g} s: {', '.join(missing)}",
            EXIT_INCOMPLETE,
        )
    offline = result.get("offline", [])
    if offline and not allow_offline:
        fail(
            f"{len(offline)} registered node(s) are offline and were not waited for; they"
            f" may still serve the endpoint to their host: {', '.join(offline)}"
            " (pass --allow-offline to accept that)",
            EXIT_INCOMPLETE,
        )


def _stream_json(client: AdminClient, url: str, body: Any, budget: float) -> dict[str, Any]:
    result: dict[str, Any] | None = None
    for event in client.stream_lines("POST", url, body, timeout=budget):
        print_json_line(event)
        if event.get("event") == "result":
            result = event
    if result is None:
        fail("the registry ended the drain stream without a result", EXIT_INCOMPLETE)
    return result


def _stream_tty(
    client: AdminClient, url: str, body: Any, budget: float, obj: str, endpoint: str
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    result: dict[str, Any] | None = None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[missing]}"),
    )
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task("nodes acknowledged", total=None, missing="")
        for event in client.stream_lines("POST", url, body, timeout=budget):
            kind = event.get("event")
            if kind == "started":
                bar.update(task, total=max(1, len(event["nodes"])), completed=0)
            elif kind == "progress":
                missing = event["missing"][:SHOWN_MISSING]
                more = event["missing_count"] - len(missing)
                shown = "waiting for " + ", ".join(missing) if missing else ""
                shown += f" and {more} more" if more > 0 else ""
                bar.update(task, completed=event["acked_count"], missing=shown)
            elif kind == "result":
                result = event
    if result is None:
        fail("the registry ended the drain stream without a result", EXIT_INCOMPLETE)
    _summary(result, obj, endpoint)
    return result


def _summary(result: dict[str, Any], obj: str, endpoint: str) -> None:
    revision, nodes = result["revision"], result["nodes"]
    how = "is now inactive" if result["changed"] else "was inactive already"
    say(f'"{endpoint}" of {obj} {how} (revision {revision})')
    took = f"{result['elapsed_s']:.3f} s"
    offline = result.get("offline", [])
    if not nodes and not offline:
        say("no node agent is registered or connected: nothing to wait for")
    elif not nodes:
        say("every registered node is offline: nothing could be waited for")
    elif result["complete"]:
        say(f"acknowledged by all {len(nodes)} nodes in {took}")
    else:
        say(f"acknowledged by {len(result['acked'])} of {len(nodes)} nodes; waited {took}")

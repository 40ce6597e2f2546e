"""TARS endpoint, endpoint-list and object strings (reference §5), parsed and formatted.

An endpoint string looks like ``tcp -h 10.0.0.1 -p 10000 -t 60000``; a list joins endpoints
with ``:``; an object string is ``App.Server.Obj`` or ``App.Server.Obj@<endpoint list>``.

Parsing follows TarsCpp ``TC_Endpoint::parse``: whitespace-separated tokens, every option
is exactly ``-x``, an option's value is the next token unless that token starts with ``-``,
unknown options are ignored (their value, if any, is skipped). As a consequence no option
value can be negative: ``-w -1`` means "``-w`` without a value" in C++ too.

Formatting follows TarsCpp ``TC_Endpoint::toString`` (``proto -h H -p P``, then ``-t``,
``-g``, ``-q``, ``-w``, ``-v``, ``-e``, then the AppCache ``-s set``) with two deliberate
deviations, both needed so that ``parse_endpoint(format_endpoint(x)) == x`` for every
valid ``x``, and both matching older TarsCpp releases (which C++ parses to the same value):

* ``-t`` is always written. C++ drops ``-t 0``, which then parses back as the default 3000.
* ``-w`` is written whenever weight is not -1 (the "unused" marker). C++ writes it only when
  > 0, so a weight of 0 would come back as -1 (or as 100 with a weight type).

``-b`` (TarsGo's bind address, unknown to C++) is written right after ``-p`` so that the last
token of a formatted endpoint is never an address that may end in ``:`` (``-b ::``); list
splitting trims colons around each endpoint.

Every malformed input raises :class:`~tarscascade.errors.EndpointSyntaxError`; inputs are
length-bounded so hostile strings cost little.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from tarscascade.errors import EndpointSyntaxError
from tarscascade.wire.idl.endpointf import EndpointF

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_ENDPOINT_LEN",
    "MAX_LIST_LEN",
    "Endpoint",
    "ObjectRef",
    "Transport",
    "format_endpoint",
    "format_endpoint_list",
    "format_object",
    "parse_endpoint",
    "parse_endpoint_list",
    "parse_object",
    "validate_object_id",
]

Transport = Literal["tcp", "udp", "ssl"]

#: ``-t`` when absent (TarsCpp constructor and TarsGo parser agree).
DEFAULT_TIMEOUT = 3000
#: Longest single endpoint string accepted.
MAX_ENDPOINT_LEN = 4096
#: Longest endpoint-list or object string accepted (a few thousand endpoints).
MAX_LIST_LEN = 256 * 1024

INT32_MAX = 2**31 - 1
_MAX_WEIGHT_TYPED = 100  # weight cap when weightType != 0

_ISTCP: dict[str, int] = {"udp": 0, "tcp": 1, "ssl": 2}
_TRANSPORT_OF_ISTCP: dict[int, Transport] = {0: "udp", 1: "tcp", 2: "ssl"}
_TRANSPORTS: dict[str, Transport] = {t: t for t in _TRANSPORT_OF_ISTCP.values()}

# A ':' that starts a new endpoint: followed (after optional spaces) by a transport word that
# is a whole token. TarsCpp splits the same way (it does not check the word boundary), so
# IPv6 hosts such as ``::1`` stay intact.
_LIST_SEP = re.compile(r":(?=\s*(?:tcp|udp|ssl)(?:\s|\Z))", re.IGNORECASE)
# A value ending like this would be mistaken for a list separator once formatted.
_SEP_LOOKALIKE = re.compile(r":(?:tcp|udp|ssl)\Z", re.IGNORECASE)
_OBJECT_ID = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_MAX_DIGITS = 10  # int32 max has 10 digits; longer numbers are out of range anyway


def _show(s: str, limit: int = 80) -> str:
    """``repr`` of ``s``, shortened so error messages stay bounded."""
    return repr(s) if len(s) <= limit else repr(s[:limit]) + f"... ({len(s)} chars)"


def _check_input(s: object, limit: int, what: str) -> str:
    if not isinstance(s, str):
        raise EndpointSyntaxError(f"{what} must be a str, not {type(s).__name__}")
    if len(s) > limit:
        raise EndpointSyntaxError(f"{what} too long: {len(s)} chars (limit {limit})")
    return s


def _is_token(v: str) -> bool:
    """A value that survives whitespace tokenisation unchanged and is not read as an option."""
    # isprintable() is False for every whitespace and control character except ' '.
    return bool(v) and v.isprintable() and " " not in v and not v.startswith("-")


def _check_value(field: str, v: object) -> str:
    if not isinstance(v, str) or not _is_token(v):
        raise EndpointSyntaxError(
            f"bad {field} {v!r}: must be non-empty, printable, without spaces, not start with '-'"
        )
    if _SEP_LOOKALIKE.search(v):
        raise EndpointSyntaxError(f"bad {field} {v!r}: ends like an endpoint-list separator")
    return v


def _check_int(field: str, v: object, lo: int, hi: int) -> int:
    if type(v) is not int:  # bool is an int subclass; refuse it too
        raise EndpointSyntaxError(f"{field} must be an int, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise EndpointSyntaxError(f"{field} {v} out of range {lo}..{hi}")
    return v


def _check_set_id(v: object) -> str:
    # ':' is refused so a set id can end an endpoint in a ':'-joined list.
    if isinstance(v, str) and _is_token(v) and ":" not in v:
        parts = v.split(".")
        if len(parts) == 3 and all(parts):
            return v
    raise EndpointSyntaxError(f"bad set id {v!r}: expected name.area.group")


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One parsed endpoint. Construction validates every field (``EndpointSyntaxError``).

    Invariants (exactly the values the string syntax can express): ``port`` 0..65535;
    ``timeout``, ``grid``, ``qos``, ``weight_type`` 0..2**31-1; ``weight`` -1 (unused) or
    0..2**31-1, and 0..100 when ``weight_type`` != 0; ``auth_type`` 0 or 1; ``host`` and
    ``bind`` are single tokens; ``set_id`` is ``""`` or ``name.area.group``.

    ``host`` is kept as written: ``*`` is not rewritten to ``0.0.0.0`` (TarsCpp does that
    when parsing); whoever binds a socket maps it.
    """

    transport: Transport
    host: str
    port: int
    timeout: int = DEFAULT_TIMEOUT
    grid: int = 0
    qos: int = 0
    weight: int = -1
    weight_type: int = 0
    auth_type: int = 0
    set_id: str = ""
    bind: str = ""

    def __post_init__(self) -> None:
        if self.transport not in _ISTCP:
            raise EndpointSyntaxError(
                f"unknown transport {self.transport!r}: expected tcp, udp or ssl"
            )
        _check_value("host", self.host)
        _check_int("port", self.port, 0, 65535)
        _check_int("timeout", self.timeout, 0, INT32_MAX)
        _check_int("grid", self.grid, 0, INT32_MAX)
        _check_int("qos", self.qos, 0, INT32_MAX)
        _check_int("weight_type", self.weight_type, 0, INT32_MAX)
        hi = _MAX_WEIGHT_TYPED if self.weight_type else INT32_MAX
        lo = 0 if self.weight_type else -1  # parse turns -1 into 100 when a type is set
        _check_int("weight", self.weight, lo, hi)
        _check_int("auth_type", self.auth_type, 0, 1)
        if self.set_id:
            _check_set_id(self.set_id)
        if self.bind:
            _check_value("bind", self.bind)

    @property
    def istcp(self) -> int:
        """``EndpointF.istcp``: 0 UDP, 1 TCP, 2 SSL."""
        return _ISTCP[self.transport]

    def __str__(self) -> str:
        return format_endpoint(self)

    def to_endpointf(
        self,
        node_name: str = "",
        *,
        groupworkid: int = -1,
        grouprealid: int = -1,
        bak_flag: int = 0,
    ) -> EndpointF:
        """The registry's wire form. ``bind`` has no EndpointF field and is dropped."""
        return EndpointF(
            host=self.host,
            port=self.port,
            timeout=self.timeout,
            istcp=self.istcp,
            grid=self.grid,
            groupworkid=groupworkid,
            grouprealid=grouprealid,
            setId=self.set_id,
            qos=self.qos,
            bakFlag=bak_flag,
            weight=self.weight,
            weightType=self.weight_type,
            authType=self.auth_type,
            nodeName=node_name,
        )

    @classmethod
    def from_endpointf(cls, ep: EndpointF) -> Endpoint:
        """Convert a decoded ``EndpointF``, applying the parser's weight rules.

        Values the string syntax cannot express (negative grid, unknown istcp, ...) raise
        :class:`EndpointSyntaxError`, so a caller can skip one bad entry of a list.
        """
        transport = _TRANSPORT_OF_ISTCP.get(ep.istcp)
        if transport is None:
            raise EndpointSyntaxError(f"bad EndpointF.istcp {ep.istcp!r}: expected 0, 1 or 2")
        return cls(
            transport=transport,
            host=ep.host,
            port=ep.port,
            timeout=ep.timeout,
            grid=ep.grid,
            qos=ep.qos,
            weight=_typed_weight(ep.weight, ep.weightType),
            weight_type=ep.weightType,
            auth_type=ep.authType,
            set_id=ep.setId,
        )


def _typed_weight(weight: int, weight_type: int) -> int:
    """TarsCpp: with a weight type, an unset weight means 100 and weights cap at 100."""
    if weight_type != 0 and type(weight) is int:
        return _MAX_WEIGHT_TYPED if weight == -1 else min(weight, _MAX_WEIGHT_TYPED)
    return weight


# -h host, -p port, -t timeout, -g grid, -q qos, -w weight, -v weight type, -e auth type,
# -s set id (TarsCpp AppCache), -b bind (TarsGo); any other letter is ignored like in TarsCpp
_OPTIONS = frozenset("hptgqwvesb")


def _parse_uint(opt: str, tok: str, hi: int, s: str) -> int:
    # Only ASCII digits: int() would also take '_', '+', spaces and non-ASCII digits.
    if not (tok.isascii() and tok.isdigit()):
        raise EndpointSyntaxError(
            f"bad -{opt} value {_show(tok)} in endpoint {_show(s)}: expected an integer 0..{hi}"
        )
    digits = tok.lstrip("0") or "0"
    # Length first: int() of a huge digit string is slow (and refused beyond 4300 digits).
    if len(digits) > _MAX_DIGITS or int(digits) > hi:
        raise EndpointSyntaxError(
            f"bad -{opt} value {_show(tok)} in endpoint {_show(s)}: out of range 0..{hi}"
        )
    return int(digits)


def parse_endpoint(s: str) -> Endpoint:
    """Parse ``<proto> -h <host> -p <port> [-t ms] [-g] [-q] [-w] [-v] [-e] [-s] [-b]``.

    The transport word is case-insensitive. ``-h`` and ``-p`` are required. Duplicate
    options: the last one wins (as in C++).
    """
    _check_input(s, MAX_ENDPOINT_LEN, "endpoint string")
    tokens = s.split()
    if not tokens:
        raise EndpointSyntaxError("empty endpoint string")
    transport = tokens[0].lower()
    if transport not in _TRANSPORTS:
        raise EndpointSyntaxError(
            f"unknown transport {_show(tokens[0])} in endpoint {_show(s)}: expected tcp, udp or ssl"
        )
    text: dict[str, str] = {}  # -h, -s, -b
    nums: dict[str, int] = {}  # the numeric options
    i, n = 1, len(tokens)
    while i < n:
        opt = tokens[i]
        if len(opt) != 2 or opt[0] != "-":
            raise EndpointSyntaxError(
                f"unexpected token {_show(opt)} in endpoint {_show(s)}: expected an option -x"
            )
        i += 1
        value: str | None = None
        if i < n and not tokens[i].startswith("-"):
            value = tokens[i]
            i += 1
        letter = opt[1]
        if letter not in _OPTIONS:
            continue  # unknown option: ignored, value (if any) already skipped
        if value is None:
            raise EndpointSyntaxError(
                f"option {opt} needs a value in endpoint {_show(s)} (a value cannot start with '-')"
            )
        # Values are checked as they come, like TarsCpp: a bad value fails even if repeated.
        if letter in "hsb":
            text[letter] = value
            continue
        n_val = _parse_uint(letter, value, 65535 if letter == "p" else INT32_MAX, s)
        if letter == "e" and n_val not in (0, 1):
            raise EndpointSyntaxError(
                f"bad -e value {_show(value)} in endpoint {_show(s)}: expected 0 or 1"
            )
        nums[letter] = n_val

    if "h" not in text:
        raise EndpointSyntaxError(f"missing -h <host> in endpoint {_show(s)}")
    if "p" not in nums:
        raise EndpointSyntaxError(f"missing -p <port> in endpoint {_show(s)}")
    weight_type = nums.get("v", 0)
    return Endpoint(
        transport=_TRANSPORTS[transport],
        host=text["h"],
        port=nums["p"],
        timeout=nums.get("t", DEFAULT_TIMEOUT),
        grid=nums.get("g", 0),
        qos=nums.get("q", 0),
        weight=_typed_weight(nums.get("w", -1), weight_type),
        weight_type=weight_type,
        auth_type=nums.get("e", 0),
        set_id=text.get("s", ""),
        bind=text.get("b", ""),
    )


def format_endpoint(ep: Endpoint) -> str:
    """The TarsCpp ``toString`` form (see the module docstring for the two deviations)."""
    out = [ep.transport, "-h", ep.host, "-p", str(ep.port)]
    if ep.bind:
        out += ["-b", ep.bind]
    out += ["-t", str(ep.timeout)]
    if ep.grid:
        out += ["-g", str(ep.grid)]
    if ep.qos:
        out += ["-q", str(ep.qos)]
    if ep.weight != -1:
        out += ["-w", str(ep.weight)]
    if ep.weight_type:
        out += ["-v", str(ep.weight_type)]
    if ep.auth_type:
        out += ["-e", str(ep.auth_type)]
    if ep.set_id:
        out += ["-s", ep.set_id]
    return " ".join(out)


def _trim(p: str) -> str:
    r"""Strip whitespace and ':' from both ends.

    A loop, not a regex: ``[\s:]+\Z`` retries at every position of a long run of colons,
    which is quadratic on hostile input.
    """
    i, j = 0, len(p)
    while i < j and (p[i] == ":" or p[i].isspace()):
        i += 1
    while j > i and (p[j - 1] == ":" or p[j - 1].isspace()):
        j -= 1
    return p[i:j]


def _split_endpoint_list(s: str) -> list[str]:
    pieces = (_trim(p) for p in _LIST_SEP.split(s))
    return [p for p in pieces if p]


def parse_endpoint_list(s: str) -> list[Endpoint]:
    """Parse endpoints joined by ``:``; an empty (or blank, or only ``:``) string gives ``[]``.

    Splits only at a ``:`` followed by the word ``tcp``/``udp``/``ssl`` (like TarsCpp
    ``sepEndpoint``), so IPv6 hosts keep their colons; spaces and stray colons around each
    endpoint are trimmed.
    """
    _check_input(s, MAX_LIST_LEN, "endpoint list")
    return [parse_endpoint(p) for p in _split_endpoint_list(s)]


def format_endpoint_list(eps: tuple[Endpoint, ...] | list[Endpoint]) -> str:
    return ":".join(format_endpoint(ep) for ep in eps)


def _check_object_part(what: str, v: object, forbidden: str) -> str:
    if not isinstance(v, str) or not v or not v.isprintable() or " " in v:
        raise EndpointSyntaxError(f"bad {what} {v!r}: must be non-empty and without spaces")
    for c in forbidden:
        if c in v:
            raise EndpointSyntaxError(f"bad {what} {v!r}: must not contain {c!r}")
    return v


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object string: servant name, direct endpoints (empty: ask the registry), suffix.

    ``suffix`` is TarsCpp's ``Obj#suffix`` (an extra proxy instance with its own
    connections); it is not part of the name. ``""`` means none.
    """

    name: str
    endpoints: tuple[Endpoint, ...] = ()
    suffix: str = ""

    def __post_init__(self) -> None:
        _check_object_part("object name", self.name, "@#")
        if self.suffix:
            _check_object_part("object suffix", self.suffix, "@")
        if not isinstance(self.endpoints, tuple) or not all(
            isinstance(e, Endpoint) for e in self.endpoints
        ):
            raise EndpointSyntaxError("ObjectRef.endpoints must be a tuple of Endpoint")

    def __str__(self) -> str:
        return format_object(self)


def parse_object(s: str) -> ObjectRef:
    """Parse ``App.Server.Obj[#suffix][@endpoint list]`` (surrounding whitespace ignored).

    The name is checked leniently (non-empty, no whitespace, ``@`` or ``#``); use
    :func:`validate_object_id` where exactly ``App.Server.Obj`` is required. ``@`` with an
    empty list is an error. A suffix may itself contain ``#`` (``Obj#a#b`` has suffix
    ``a#b``); TarsCpp only cares that one is present.
    """
    _check_input(s, MAX_LIST_LEN, "object string")
    head, at, tail = s.strip().partition("@")
    name, hash_, suffix = head.partition("#")
    if hash_ and not suffix:
        raise EndpointSyntaxError(f"empty suffix after '#' in object {_show(s)}")
    endpoints: tuple[Endpoint, ...] = ()
    if at:
        endpoints = tuple(parse_endpoint_list(tail))
        if not endpoints:
            raise EndpointSyntaxError(f"no endpoints after '@' in object {_show(s)}")
    if not name:
        raise EndpointSyntaxError(f"empty object name in {_show(s)}")
    return ObjectRef(name, endpoints, suffix)


def format_object(ref: ObjectRef) -> str:
    text = ref.name + (f"#{ref.suffix}" if ref.suffix else "")
    if ref.endpoints:
        text += "@" + format_endpoint_list(ref.endpoints)
    return text


def validate_object_id(s: str) -> str:
    """Return ``s`` if it is exactly ``App.Server.Obj`` (three parts of ``[A-Za-z0-9_-]``)."""
    _check_input(s, MAX_ENDPOINT_LEN, "object id")
    if not _OBJECT_ID.fullmatch(s):
        raise EndpointSyntaxError(
            f"bad object id {_show(s)}: expected App.Server.Obj (letters, digits, '_', '-')"
        )
    return s

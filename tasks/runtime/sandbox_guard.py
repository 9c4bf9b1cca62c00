"""Audit-hook guard for a sandboxed Python child, loaded there as `sitecustomize`.

Input: `sandbox_policy.json` next to this file, written by the runner into the run's
boot directory (which is first on the child's PYTHONPATH). Output: none; under the
module name `sitecustomize` it installs a `sys.addaudithook` hook that raises
`PermissionError("sandbox: ...")` for file writes outside the writable roots,
network access and name lookups when the network is off, and process creation
unless allowed. If the policy cannot be loaded the child exits at once (fail
closed). Imported under any other name it does nothing, so the orchestrator can
copy its file and test `refusal`. Standard library only: it runs before anything
else in the child. The hook is a speed bump that gives clear errors, not a wall:
code using ctypes or native extensions bypasses it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from typing import Any

POLICY_FILE = "sandbox_policy.json"
MARKER = "sandbox:"
GUARD_FAILURE_EXIT = 121

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ALWAYS_WRITABLE = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
    }
)
_SOCKET_EVENTS = frozenset(
    {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"}
)
_LOOKUP_EVENTS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
    }
)
# Event -> the (path argument index, dir_fd argument index) pairs it modifies.
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.mkdir": ((0, 2),),
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((0, 2), (1, 3)),
    "os.symlink": ((1, 2),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.truncate": ((0, None),),
    "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
    "shutil.rmtree": ((0, 1),),
}
_WATCHED = frozenset(
    {"open", *_PROCESS_EVENTS, *_SOCKET_EVENTS, *_LOOKUP_EVENTS, *_PATH_EVENTS}
)


@dataclass(frozen=True)
class GuardPolicy:
    """What the child may do.

    Attributes:
        writable_roots: Resolved directories (the scratch directory) under which
            files may be created, changed and removed.
        network: When False, sockets may reach only loopback, and only when
            `isolated_loopback` is True; name lookups are refused.
        isolated_loopback: True when the child runs in its own network namespace,
            whose loopback cannot reach the host.
        allow_subprocess: When False, every way of starting a process is refused.
    """

    writable_roots: tuple[str, ...]
    network: bool = False
    isolated_loopback: bool = False
    allow_subprocess: bool = False

    def to_json(self) -> str:
        """Serialise for the policy file."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GuardPolicy:
        """Parse a policy file written by `to_json`."""
        data = json.loads(text)
        data["writable_roots"] = tuple(data["writable_roots"])
        return cls(**data)


def refusal(policy: GuardPolicy, event: str, args: tuple[Any, ...]) -> str | None:
    """Decide one audit event.

    Args:
        policy: What the child may do.
        event: The audit event name.
        args: The audit event arguments.

    Returns:
        None when allowed, else the refusal message (it starts with "sandbox:").
    """
    if event == "open":
        return _check_open(policy, args)
    if event in _PATH_EVENTS:
        for path_index, fd_index in _PATH_EVENTS[event]:
            dir_fd = args[fd_index] if fd_index is not None else None
            message = _check_write(policy, args[path_index], dir_fd, event)
            if message is not None:
                return message
        return None
    if event in _PROCESS_EVENTS:
        if policy.allow_subprocess:
            return None
        return f"{MARKER} starting processes is not allowed ({event})"
    if event in _SOCKET_EVENTS:
        return _check_socket(policy, event, args[0], args[1])
    if event in _LOOKUP_EVENTS:
        host = args[0] if args else None
        if policy.network or host is None or _is_address(host):
            return None
        return f"{MARKER} resolving {host!r} is not allowed (network is off)"
    return None


def install(policy: GuardPolicy) -> None:
    """Install the audit hook in this interpreter; it cannot be removed.

    Args:
        policy: What the child may do.
    """

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in _WATCHED:
            return
        try:
            message = refusal(policy, event, args)
        except Exception as exc:  # fail closed on anything unexpected
            message = f"{MARKER} could not check {event} ({exc!r})"
        if message is not None:
            raise PermissionError(message)

    sys.addaudithook(hook)


def _check_open(policy: GuardPolicy, args: tuple[Any, ...]) -> str | None:
    path, mode, flags = args
    writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
        isinstance(mode, str) and bool(set(mode) & set("wax+"))
    )
    if not writing:
        return None
    if isinstance(path, (str, bytes)) and os.fsdecode(path) in _ALWAYS_WRITABLE:
        return None
    return _check_write(policy, path, None, "open")


def _check_write(policy: GuardPolicy, path: Any, dir_fd: Any, event: str) -> str | None:
    real = _resolve(path, dir_fd)
    if real is None or real in _ALWAYS_WRITABLE:
        return None
    if _inside(real, policy.writable_roots):
        return None
    return (
        f"{MARKER} writing {real!r} is not allowed ({event} outside the scratch "
        "directory)"
    )


def _check_socket(
    policy: GuardPolicy, event: str, sock: Any, address: Any
) -> str | None:
    if policy.network:
        return None
    family = getattr(sock, "family", None)
    if family == socket.AF_UNIX:
        if isinstance(address, (str, bytes)) and not os.fsdecode(address).startswith(
            "\0"
        ):
            if _inside(os.path.realpath(os.fsdecode(address)), policy.writable_roots):
                return None
        elif policy.isolated_loopback:
            return None
    elif family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        local = _is_local_host(address[0])
        if local and (event == "socket.bind" or policy.isolated_loopback):
            return None
    return f"{MARKER} network access to {address!r} is not allowed ({event})"


def _is_address(host: Any) -> bool:
    """True for loopback names and IP literals: looking them up sends nothing."""
    if _is_local_host(host):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    return True


def _is_local_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _resolve(path: Any, dir_fd: Any) -> str | None:
    """The resolved target of a path argument; None when it is not a file path."""
    if isinstance(path, int):
        return _fd_path(path)
    try:
        text = os.fsdecode(path)
    except TypeError:
        return None
    if not os.path.isabs(text) and isinstance(dir_fd, int) and dir_fd >= 0:
        base = _fd_path(dir_fd)
        if base is None:
            return None
        text = os.path.join(base, text)
    return os.path.realpath(text)


def _fd_path(fd: int) -> str | None:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return target if target.startswith("/") else None


def _inside(real: str, roots: tuple[str, ...]) -> bool:
    return any(real == root or real.startswith(root + os.sep) for root in roots)


def _install_from_policy_file() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, POLICY_FILE), encoding="utf-8") as handle:
            policy = GuardPolicy.from_json(handle.read())
        install(policy)
    except Exception as exc:  # `site` would swallow it and run unguarded
        sys.stderr.write(f"{MARKER} the guard could not start: {exc!r}\n")
        sys.stderr.flush()
        os._exit(GUARD_FAILURE_EXIT)


if __name__ == "sitecustomize":
    _install_from_policy_file()

"""Which kernel isolation this machine allows, found by trying it.

The sandbox prefers util-linux ``unshare`` with new network, mount and PID
namespaces (``--net --mount --pid --fork --kill-child --mount-proc``), plus a
user namespace (``--user --map-root-user``) when ponder is not root. It tries
the strongest set first and falls back step by step:

1. net + mount + PID namespaces: no network, read-only file system outside the
   work directory, and no process outlives the run;
2. net namespace only;
3. none (no ``unshare``, or the kernel or a container forbids namespaces): the
   program still runs in its own process group under rlimits, but it can reach
   the network and write wherever its user may. Results say so
   (``network_isolated=False``).

When ponder runs as root, the program runs as an unprivileged user
(``nobody``, uid 65534) so that RLIMIT_NPROC holds and root's files stay
closed to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

IsolationMode = Literal["auto", "required", "none"]
"""auto: the strongest that works; required: namespaces or an error; none: skip them."""

NOBODY = 65534
_SEARCH_PATH = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"
_FULL = ("--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc")
_NET_ONLY = ("--net",)


@dataclass(frozen=True, slots=True)
class Isolation:
    """How programs are isolated on this machine (found by ``detect_isolation``)."""

    prefix: tuple[str, ...]
    """The command put in front of the supervisor (``unshare ...``), or empty."""
    network: bool
    mount: bool
    pid: bool
    user_namespace: bool
    """A user namespace maps the caller's uid to root inside (non-root callers)."""
    uid: int | None
    """The uid the program runs as, when ponder is root and drops to it."""

    def describe(self) -> str:
        parts = [name for name, on in (("net", self.network), ("mount", self.mount),
                                       ("pid", self.pid), ("user", self.user_namespace)) if on]
        who = f", runs as uid {self.uid}" if self.uid is not None else ""
        return (f"namespaces: {'+'.join(parts)}" if parts else "no namespaces") + who


def detect_isolation(mode: IsolationMode = "auto", python: str | None = None) -> Isolation:
    """Try the namespace sets, strongest first, and return the first that runs a program."""
    root = os.geteuid() == 0
    uid = NOBODY if root else None
    unshare = shutil.which("unshare", path=_SEARCH_PATH)
    if mode != "none" and unshare is not None:
        user = () if root else ("--user", "--map-root-user")
        for flags in (_FULL, _NET_ONLY):
            prefix = (unshare, *user, *flags)
            if _works(prefix, python or sys.executable):
                return Isolation(prefix, network=True, mount="--mount" in flags,
                                 pid="--pid" in flags, user_namespace=not root, uid=uid)
    return Isolation((), network=False, mount=False, pid=False, user_namespace=False, uid=uid)


def _works(prefix: tuple[str, ...], python: str) -> bool:
    try:
        done = subprocess.run([*prefix, python, "-I", "-S", "-c", "pass"], capture_output=True,
                              timeout=20, env={"PATH": _SEARCH_PATH}, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0

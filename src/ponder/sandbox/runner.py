"""The sandbox runner: untrusted Python in a separate, limited, isolated process.

Model-written code is never run in ponder's own process. Each run gets:

* a fresh temporary work directory, deleted afterwards;
* a cleared environment (PATH, HOME=work dir, UTF-8 locale, nothing inherited);
* resource limits set with ``setrlimit`` in the child: CPU seconds, address
  space, file size, processes, open files, no core dumps;
* a wall-clock timeout that kills the whole process group (and, with a PID
  namespace, every process the program started, even ones that called
  ``setsid``);
* no network and a read-only file system outside the work directory, where
  the kernel allows namespaces (see ``ponder.sandbox.isolation``; the result
  reports what was in force);
* capped output: past ``Limits.output_bytes`` per stream the program is killed.

Runs share a pool of ``concurrency`` slots; ``arun`` is the async entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ponder.errors import CapabilityError, ConfigError
from ponder.sandbox.isolation import Isolation, IsolationMode, detect_isolation
from ponder.sandbox.limits import KillReason, Limits, SandboxResult

_SUPERVISOR = Path(__file__).with_name("_supervisor.py")
_PATH = "/usr/local/bin:/usr/bin:/bin"
_GRACE_SECONDS = 2.0
_READ_CHUNK = 65536
_ERRNO_LIMITS: tuple[tuple[str, KillReason], ...] = (
    ("MemoryError", "memory"),
    ("[Errno 27]", "file_size"),
    ("[Errno 24]", "open_files"),
    ("[Errno 11]", "processes"),
)


class Sandbox:
    """Runs untrusted Python programs, ``concurrency`` at a time::

        sandbox = Sandbox(Limits(wall_seconds=5), concurrency=2)
        result = sandbox.run("print(6 * 7)")
        assert result.ok and result.stdout == "42\\n"
    """

    def __init__(self, limits: Limits | None = None, *, concurrency: int = 2,
                 isolation: IsolationMode = "auto", python: str | None = None) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"sandbox concurrency must be an integer >= 1, got {concurrency!r}")
        if isolation not in ("auto", "required", "none"):
            raise ConfigError(f"sandbox isolation must be auto, required or none, "
                              f"got {isolation!r}")
        self.limits = limits or Limits()
        self.concurrency = concurrency
        self.mode: IsolationMode = isolation
        self._python_choice = python
        self._slots = threading.BoundedSemaphore(concurrency)
        self._probe_lock = threading.Lock()
        self._isolation: Isolation | None = None
        self._python: str | None = None

    @property
    def isolation(self) -> Isolation:
        """What this machine allows, probed once on first use."""
        return self._ready()[0]

    @property
    def python(self) -> str:
        """The interpreter programs run with: the one given, else the first the sandbox
        user can start (ponder's own, else ``python3`` on the system PATH)."""
        return self._ready()[1]

    def _ready(self) -> tuple[Isolation, str]:
        with self._probe_lock:
            if self._isolation is None or self._python is None:
                found = detect_isolation(self.mode, self._python_choice)
                if self.mode == "required" and not found.network:
                    raise CapabilityError("sandbox isolation='required' but this kernel allows no "
                                          "network namespace (unshare failed)")
                self._python = self._pick_python(found)
                self._isolation = found
            return self._isolation, self._python

    def _pick_python(self, isolation: Isolation) -> str:
        """Try the candidates in a real run: a private venv may be closed to ``nobody``."""
        system = shutil.which("python3", path=_PATH)
        candidates = [self._python_choice] if self._python_choice else \
            list(dict.fromkeys(p for p in (sys.executable, system) if p))
        probe = Limits(wall_seconds=20)
        for python in candidates:
            run = _Run(python, isolation, probe)
            try:
                if run.execute("import sys", None, {}).ok:
                    return python
            finally:
                run.cleanup()
        raise CapabilityError(f"the sandbox user cannot start any of {candidates}; pass a "
                              f"world-readable interpreter as Sandbox(python=...)")

    def run(self, code: str, *, stdin: str | None = None,
            files: Mapping[str, str] | None = None, limits: Limits | None = None
            ) -> SandboxResult:
        """Run ``code`` as ``main.py`` in a fresh work directory with ``files`` beside it."""
        isolation, python = self._ready()
        with self._slots:
            run = _Run(python, isolation, limits or self.limits)
            try:
                return run.execute(code, stdin, files or {})
            finally:
                run.cleanup()

    async def arun(self, code: str, *, stdin: str | None = None,
                   files: Mapping[str, str] | None = None, limits: Limits | None = None
                   ) -> SandboxResult:
        """``run`` in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(self.run, code, stdin=stdin, files=files, limits=limits)


@dataclass
class _Streams:
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    out_truncated: bool = False
    err_truncated: bool = False
    stop: KillReason | None = None


class _Run:
    """One execution: work directory, process, collection, cleanup."""

    def __init__(self, python: str, isolation: Isolation, limits: Limits) -> None:
        self.python = python
        self.isolation = isolation
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="ponder-sandbox-"))
        self.workdir = self.root / "work"
        self.proc: subprocess.Popen[bytes] | None = None

    def execute(self, code: str, stdin: str | None, files: Mapping[str, str]) -> SandboxResult:
        self._prepare(code, stdin, files)
        status_r, status_w = os.pipe()
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [*self.isolation.prefix, self.python, "-I", "-S", "-B", str(_SUPERVISOR),
                 json.dumps(self._config(status_w, stdin is not None))],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={"PATH": _PATH, "LANG": "C.UTF-8"}, cwd=self.root, start_new_session=True,
                pass_fds=(status_w,))
        finally:
            os.close(status_w)
        try:
            streams = self._collect(started)
            status = _read_status(status_r)
        finally:
            os.close(status_r)
        return self._result(streams, status, time.monotonic() - started)

    def cleanup(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc.pid)
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=_GRACE_SECONDS)
        _remove_tree(self.root)

    # -- steps ---------------------------------------------------------------

    def _prepare(self, code: str, stdin: str | None, files: Mapping[str, str]) -> None:
        self.root.chmod(0o711)  # the program may enter its work dir, not list or read the rest
        self.workdir.mkdir()
        for name, text in {**files, "main.py": code}.items():
            target = self.workdir / _safe_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if stdin is not None:
            (self.root / "stdin").write_text(stdin, encoding="utf-8")
        uid = self.isolation.uid
        if uid is not None:
            for path in (self.workdir, *self.workdir.rglob("*")):
                os.chown(path, uid, uid, follow_symlinks=False)

    def _config(self, status_fd: int, has_stdin: bool) -> dict[str, object]:
        isolation = self.isolation
        already = 0 if isolation.user_namespace else _processes_of(
            isolation.uid if isolation.uid is not None else os.getuid())
        env = {"PATH": _PATH, "HOME": str(self.workdir), "TMPDIR": str(self.workdir),
               "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
               "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        return {
            "argv": [self.python, "-E", "-s", "-B", "main.py"],
            "env": env,
            "workdir": str(self.workdir),
            "stdin": str(self.root / "stdin") if has_stdin else None,
            "limits": self.limits.rlimits(processes_already=already),
            "uid": isolation.uid, "gid": isolation.uid,
            "drop_caps": isolation.user_namespace,
            "read_only": isolation.mount,
            "status_fd": status_fd,
        }

    def _collect(self, started: float) -> _Streams:
        """Read both pipes under the caps until they close; enforce the wall clock."""
        assert self.proc is not None and self.proc.stdout and self.proc.stderr
        streams = _Streams()
        targets = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        with selectors.DefaultSelector() as selector:
            for fd in targets:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            exit_fd = _pidfd(self.proc.pid)
            if exit_fd is not None:
                selector.register(exit_fd, selectors.EVENT_READ)
            try:
                self._pump(selector, targets, streams, started, exit_fd)
            finally:
                if exit_fd is not None:
                    os.close(exit_fd)
        remaining = started + self.limits.wall_seconds - time.monotonic()
        try:
            self.proc.wait(timeout=max(remaining, 0.001))
        except subprocess.TimeoutExpired:
            streams.stop = streams.stop or "wall_time"
            _kill_group(self.proc.pid)
            self.proc.wait()
        return streams

    def _pump(self, selector: selectors.BaseSelector, targets: dict[int, str],
              streams: _Streams, started: float, exit_fd: int | None) -> None:
        assert self.proc is not None
        deadline = started + self.limits.wall_seconds
        open_fds = set(targets)
        while open_fds:
            now = time.monotonic()
            if now >= deadline:
                if streams.stop is not None or self.proc.poll() is not None:
                    return  # already killed or finished; leftovers hold the pipes
                streams.stop = "wall_time"
                _kill_group(self.proc.pid)
                deadline = now + _GRACE_SECONDS
            tick = deadline - now if exit_fd is not None else min(deadline - now, 0.05)
            for key, _ in selector.select(timeout=max(tick, 0.0)):
                fd = int(key.fd)
                if fd == exit_fd or fd not in targets:
                    selector.unregister(fd)
                    self._finished()
                    deadline = min(deadline, time.monotonic() + _GRACE_SECONDS)
                elif not self._read(fd, targets[fd], streams):
                    selector.unregister(fd)
                    open_fds.discard(fd)
            if exit_fd is None and self.proc.poll() is not None:
                self._finished()
                deadline = min(deadline, time.monotonic() + _GRACE_SECONDS)

    def _finished(self) -> None:
        """The supervisor is gone: end whatever it left in the group, so the pipes close."""
        assert self.proc is not None
        self.proc.poll()
        _kill_group(self.proc.pid)

    def _read(self, fd: int, which: str, streams: _Streams) -> bool:
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf = streams.out if which == "out" else streams.err
        room = self.limits.output_bytes - len(buf)
        buf += chunk[:room]
        if len(chunk) > room:
            setattr(streams, f"{which}_truncated", True)
            if streams.stop is None:
                streams.stop = "output"
                assert self.proc is not None
                _kill_group(self.proc.pid)
        return True

    def _result(self, streams: _Streams, status: dict[str, object],
                seconds: float) -> SandboxResult:
        assert self.proc is not None
        wait_status = status.get("wait_status")
        exit_code: int | None
        sig: int | None
        if isinstance(wait_status, int):
            exit_code = os.waitstatus_to_exitcode(wait_status)
        else:  # the supervisor itself was killed (timeout or output cap)
            exit_code = self.proc.returncode
        sig = -exit_code if exit_code is not None and exit_code < 0 else None
        exit_code = None if sig is not None else exit_code
        cpu = status.get("cpu_seconds")
        cpu_seconds = float(cpu) if isinstance(cpu, int | float) else None
        stderr = streams.err.decode("utf-8", "replace")
        killed_by = streams.stop or _limit_from(sig, exit_code, stderr, cpu_seconds, self.limits)
        return SandboxResult(
            stdout=streams.out.decode("utf-8", "replace"), stderr=stderr,
            exit_code=exit_code, signal=sig, timed_out=streams.stop == "wall_time",
            killed_by=killed_by, network_isolated=self.isolation.network,
            filesystem_isolated=status.get("read_only") is True,
            pid_isolated=self.isolation.pid, seconds=seconds, cpu_seconds=cpu_seconds,
            stdout_truncated=streams.out_truncated, stderr_truncated=streams.err_truncated)


def _limit_from(sig: int | None, exit_code: int | None, stderr: str, cpu: float | None,
                limits: Limits) -> KillReason | None:
    """The limit behind a program's end: its signal, or the exception a limit raised."""
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu is not None
                                 and cpu >= limits.cpu_seconds - 0.1):
        return "cpu"
    if sig == signal.SIGXFSZ:
        return "file_size"
    if sig is not None:
        return "signal"
    if exit_code in (0, None):
        return None
    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    for marker, reason in _ERRNO_LIMITS:
        if marker in last:
            return reason
    return None


def _read_status(fd: int) -> dict[str, object]:
    """The supervisor's JSON lines, merged (later lines win)."""
    os.set_blocking(fd, False)
    try:
        raw = os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return {}
    status: dict[str, object] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                status.update(item)
    return status


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _processes_of(uid: int) -> int:
    """How many processes ``uid`` has now (RLIMIT_NPROC counts them all, per user)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    count += 1
    return count


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ConfigError(f"sandbox file name must be a relative path inside the work "
                          f"directory, got {name!r}")
    return path


def _remove_tree(root: Path) -> None:
    """Delete the run's directory, even where the program removed its own permissions."""
    def make_writable(func: object, path: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            os.chmod(path, stat.S_IRWXU)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    shutil.rmtree(root, onerror=make_writable)

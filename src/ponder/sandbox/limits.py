"""Value objects of the sandbox: the limits of a run and its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ponder.errors import ConfigError

KillReason = Literal["wall_time", "cpu", "memory", "file_size", "processes", "open_files",
                     "output", "signal"]
"""Why a program stopped early: the limit it hit, or "signal" for any other fatal signal."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one sandboxed run may use::

        Limits(wall_seconds=5, cpu_seconds=2, memory_mb=256)
    """

    wall_seconds: float = 10.0
    """Wall-clock seconds before the whole process group is killed, > 0."""
    cpu_seconds: int = 5
    """CPU seconds (RLIMIT_CPU; SIGXCPU, then SIGKILL one second later), >= 1."""
    memory_mb: int = 512
    """Address space in MiB (RLIMIT_AS); Python raises MemoryError past it, >= 32."""
    file_size_mb: int = 16
    """Largest file the program may write, in MiB (RLIMIT_FSIZE), >= 0."""
    processes: int = 32
    """Processes and threads of the sandbox user (RLIMIT_NPROC), >= 1."""
    open_files: int = 64
    """Open file descriptors (RLIMIT_NOFILE), >= 8."""
    output_bytes: int = 1_000_000
    """Bytes kept per stream (stdout, stderr); past it the program is killed, >= 1."""

    def __post_init__(self) -> None:
        checks = (
            ("wall_seconds", self.wall_seconds > 0, "> 0"),
            ("cpu_seconds", isinstance(self.cpu_seconds, int) and self.cpu_seconds >= 1,
             "an integer >= 1"),
            ("memory_mb", isinstance(self.memory_mb, int) and self.memory_mb >= 32,
             "an integer >= 32"),
            ("file_size_mb", isinstance(self.file_size_mb, int) and self.file_size_mb >= 0,
             "an integer >= 0"),
            ("processes", isinstance(self.processes, int) and self.processes >= 1,
             "an integer >= 1"),
            ("open_files", isinstance(self.open_files, int) and self.open_files >= 8,
             "an integer >= 8"),
            ("output_bytes", isinstance(self.output_bytes, int) and self.output_bytes >= 1,
             "an integer >= 1"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"sandbox limit {name} must be {rule}, "
                                  f"got {getattr(self, name)!r}")

    def rlimits(self, processes_already: int = 0) -> dict[str, int]:
        """The values the supervisor passes to ``setrlimit``, in bytes where sizes."""
        mib = 1024 * 1024
        return {"cpu": self.cpu_seconds, "memory": self.memory_mb * mib,
                "file_size": self.file_size_mb * mib,
                "processes": self.processes + processes_already,
                "open_files": self.open_files}


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What a sandboxed run did."""

    stdout: str
    stderr: str
    exit_code: int | None
    """The program's exit status; None when a signal ended it (see ``signal``)."""
    signal: int | None
    """The signal that ended the program, if one did."""
    timed_out: bool
    """The wall-clock limit was reached and the process group was killed."""
    killed_by: KillReason | None
    """The limit that stopped the program (None: it ended on its own terms)."""
    network_isolated: bool
    """The program ran in its own network namespace (no interfaces but a down loopback)."""
    filesystem_isolated: bool
    """Everything outside the work directory was read-only for the program."""
    pid_isolated: bool
    """The program ran in its own PID namespace, so no descendant outlives the run."""
    seconds: float
    cpu_seconds: float | None = None
    """CPU time of the program's main process (None when it was killed from outside)."""
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """The program exited with status 0 within its limits."""
        return self.exit_code == 0 and self.killed_by is None

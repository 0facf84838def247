"""The sandbox's supervisor: runs inside the sandbox, before and around the untrusted program.

It is never imported by ponder. ``Sandbox.run`` starts it as a script
(``python -I -S _supervisor.py CONFIG``), inside the new namespaces when
``unshare`` works, so it is PID 1 of the sandbox's PID namespace. It uses the
standard library only. It:

1. makes every mount read-only except the work directory (when it has its own
   mount namespace);
2. forks the program; the child sets the resource limits (``setrlimit``),
   drops privileges (an unprivileged uid when started as root; an empty
   capability bounding set inside a user namespace; ``no_new_privs``) and
   execs the interpreter on the program;
3. writes JSON status lines to the status pipe, which the program never
   sees: one after the mounts, one with the wait status and CPU seconds.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
# statvfs f_flag bit -> mount flag; remounting must keep the flags a user namespace locks
STATVFS_TO_MS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME,
                 2048: MS_NODIRATIME, 4096: MS_RELATIME}
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc: ctypes.CDLL, target: str, flags: int, source: str | None = None) -> None:
    src = source.encode() if source is not None else None
    if libc.mount(src, target.encode(), None, ctypes.c_ulong(flags), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            raw = line.split()[4]
            points.append(raw.encode("latin-1").decode("unicode_escape"))
    return points


def read_only_except(workdir: str) -> bool:
    """Remount everything read-only in this mount namespace, except ``workdir``."""
    libc = _libc()
    _mount(libc, "/", MS_REC | MS_PRIVATE)
    _mount(libc, workdir, MS_BIND | MS_REC, source=workdir)
    complete = True
    for point in reversed(_mount_points()):
        if point == workdir:
            continue
        try:
            current = os.statvfs(point).f_flag
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            flags |= sum(ms for st, ms in STATVFS_TO_MS.items() if current & st)
            _mount(libc, point, flags)
        except OSError:
            complete = complete and point not in ("/", "/tmp", "/dev/shm", "/var/tmp")
    return complete


def set_limits(limits: dict[str, int]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory"], limits["memory"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size"], limits["file_size"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))


def drop_privileges(config: dict[str, object]) -> None:
    libc = _libc()
    if config.get("drop_caps"):
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last cap is fine
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    uid, gid = config.get("uid"), config.get("gid")
    if isinstance(uid, int) and isinstance(gid, int):
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def run_child(config: dict[str, object], status_fd: int) -> None:
    """In the forked child: limits, privileges, stdin, exec. Never returns."""
    try:
        os.close(status_fd)
        stdin = config.get("stdin")
        fd = os.open(stdin if isinstance(stdin, str) else os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
        set_limits(config["limits"])  # type: ignore[arg-type]
        drop_privileges(config)
        os.chdir(str(config["workdir"]))
        argv = [str(a) for a in config["argv"]]  # type: ignore[attr-defined]
        os.execve(argv[0], argv, dict(config["env"]))  # type: ignore[call-overload]
    except BaseException as exc:  # report and leave without running anything else
        os.write(2, f"ponder sandbox: could not start the program: {exc!r}\n".encode())
        os._exit(127)


def main() -> None:
    config = json.loads(sys.argv[1])
    status_fd = int(config["status_fd"])
    status: dict[str, object] = {"read_only": False}
    if config.get("read_only"):
        try:
            status["read_only"] = read_only_except(str(config["workdir"]))
        except OSError as exc:
            status["mount_error"] = repr(exc)
    os.write(status_fd, (json.dumps(status) + "\n").encode())  # in case the run is killed
    pid = os.fork()
    if pid == 0:
        run_child(config, status_fd)
    _, wait_status, usage = os.wait4(pid, 0)
    status = {"wait_status": wait_status, "cpu_seconds": usage.ru_utime + usage.ru_stime,
              "max_rss_kb": usage.ru_maxrss}
    os.write(status_fd, (json.dumps(status) + "\n").encode())
    os.close(status_fd)


if __name__ == "__main__":
    main()

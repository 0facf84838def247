"""Hostile programs in the sandbox: each contained, with a clear result; ponder unaffected.

These run for real (no mocks): the sandbox's namespaces, rlimits and kills
are the kernel's. Where the kernel allows no namespaces, the tests check that
the result says so and assert the weaker guarantees that remain.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.sandbox import Limits, Sandbox, SandboxResult

FAST = Limits(wall_seconds=4, cpu_seconds=2, memory_mb=256, processes=16)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST, concurrency=2)


@pytest.fixture(autouse=True)
def ponder_unaffected(sandbox: Sandbox) -> Iterator[None]:
    """After every hostile program: same fds, bounded memory, and the sandbox still works."""
    fds = len(os.listdir("/proc/self/fd"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    assert len(os.listdir("/proc/self/fd")) <= fds, "the run leaked file descriptors"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50_000, "ponder's RSS grew"
    follow_up = sandbox.run("print('still fine')")
    assert follow_up.ok and follow_up.stdout == "still fine\n"


def sandbox_processes(uid: int | None) -> list[int]:
    """Live (not zombie) processes of the sandbox user, other than ours."""
    if uid is None:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def wait_until_gone(uid: int | None, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := sandbox_processes(uid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    result = sandbox.run("import os\nwhile True:\n    try:\n        os.fork()\n"
                         "    except OSError:\n        pass\n")
    assert result.timed_out and result.killed_by == "wall_time"
    assert result.seconds < FAST.wall_seconds + 3
    assert wait_until_gone(sandbox.isolation.uid) == [], "fork bomb processes outlived the run"


def test_process_limit_holds(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(30)\n            os._exit(0)\n        n += 1\n"
        "except OSError as exc:\n    print(n, exc.errno)\n")
    count, errno = result.stdout.split()
    assert result.ok and errno == "11"  # EAGAIN from RLIMIT_NPROC
    assert 1 <= int(count) < FAST.processes
    assert wait_until_gone(sandbox.isolation.uid) == [], "sleeping children outlived the run"


def test_escaped_session_dies_with_the_run(sandbox: Sandbox) -> None:
    if not sandbox.isolation.pid:
        pytest.skip("no PID namespace here: a child that calls setsid() can outlive the run")
    result = sandbox.run("import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                         "    time.sleep(60)\nprint('parent leaves')\n")
    assert result.ok and result.pid_isolated
    assert wait_until_gone(sandbox.isolation.uid) == []


def test_memory_bomb_hits_the_address_space_limit(sandbox: Sandbox) -> None:
    result = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))\n")
    assert result.killed_by == "memory" and result.exit_code == 1
    assert "MemoryError" in result.stderr


def test_infinite_loop_hits_the_cpu_limit() -> None:
    result = Sandbox(Limits(wall_seconds=15, cpu_seconds=1)).run("while True:\n    pass\n")
    assert result.killed_by == "cpu" and not result.timed_out
    assert result.signal is not None and result.exit_code is None
    assert result.cpu_seconds is not None and result.cpu_seconds >= 0.9


def test_sleeping_forever_hits_the_wall_clock() -> None:
    started = time.monotonic()
    result = Sandbox(Limits(wall_seconds=1.5)).run("import time\ntime.sleep(60)\n")
    assert result.timed_out and result.killed_by == "wall_time" and result.exit_code is None
    assert 1.4 < time.monotonic() - started < 5


def test_writing_outside_the_work_dir_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    outside = tmp_path / "stolen.txt"
    result = sandbox.run(
        "import os\nopen('inside.txt', 'w').write('ok')\nprint(os.path.exists('inside.txt'))\n"
        f"for path in [{str(outside)!r}, '/tmp/ponder-sandbox-escape.txt']:\n"
        "    try:\n        open(path, 'w').write('pwned')\n        print('wrote', path)\n"
        "    except OSError as exc:\n        print('refused', exc.errno)\n")
    lines = result.stdout.splitlines()
    assert result.ok and lines[0] == "True"
    if result.filesystem_isolated:
        # EROFS: read-only outside the work dir (EACCES first where the path is closed anyway)
        assert lines[1] in ("refused 30", "refused 13") and lines[2] == "refused 30"
        assert not Path("/tmp/ponder-sandbox-escape.txt").exists()
    elif sandbox.isolation.uid is not None:
        assert lines[1] == "refused 13"  # EACCES: the unprivileged user cannot write there
        Path("/tmp/ponder-sandbox-escape.txt").unlink(missing_ok=True)
    else:
        pytest.skip(f"no mount namespace and no privilege drop: {result.stdout!r}")
    assert not outside.exists()


def test_work_dir_is_fresh_and_deleted(sandbox: Sandbox) -> None:
    first = sandbox.run("import os\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))\n"
                        "open('left.txt', 'w').write('x')\n")
    workdir, listing = first.stdout.splitlines()
    assert listing == "['main.py']"
    assert not Path(workdir).exists() and not Path(workdir).parent.exists()
    second = sandbox.run("import os\nprint(os.path.exists('left.txt'))\n")
    assert second.stdout == "False\n"


def test_reading_etc_passwd_is_allowed_and_reported(sandbox: Sandbox) -> None:
    """World-readable system files stay readable (documented); the result reports it."""
    result = sandbox.run("print(open('/etc/passwd').read().splitlines()[0])")
    assert result.ok and result.stdout.startswith("root:")
    secret = sandbox.run("import os\ntry:\n    os.listdir('/root')\n    print('listed')\n"
                         "except OSError as exc:\n    print('refused', exc.errno)\n")
    if sandbox.isolation.uid is not None:
        assert secret.stdout == "refused 13\n"  # root's home is closed to the sandbox user


@pytest.fixture()
def listener() -> Iterator[tuple[int, list[bytes]]]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(100))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


CONNECT = ("import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), "
           "timeout=2)\n    s.sendall(b'hello')\n    s.close()\n    print('connected')\n"
           "except OSError as exc:\n    print('refused', exc.errno)\n")


def test_socket_to_localhost_fails_in_a_network_namespace(
        sandbox: Sandbox, listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    result = sandbox.run(CONNECT.format(port=port))
    assert result.ok
    if not result.network_isolated:
        pytest.skip(f"no network namespace on this kernel: {result.stdout.strip()}")
    assert result.stdout.startswith("refused ")
    time.sleep(0.3)
    assert received == []


def test_without_namespaces_the_result_says_network_is_open(
        listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    result = Sandbox(FAST, isolation="none").run(CONNECT.format(port=port))
    assert not result.network_isolated and not result.filesystem_isolated
    assert result.stdout == "connected\n"
    deadline = time.monotonic() + 3
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == [b"hello"]


def test_os_system_runs_contained(sandbox: Sandbox) -> None:
    result = sandbox.run("import os\nstatus = os.system('id -u; touch /etc/ponder-owned; "
                         "echo shell-done')\nprint('status', status)\n")
    assert result.ok and "shell-done" in result.stdout
    if sandbox.isolation.uid is not None:
        assert result.stdout.splitlines()[0] == str(sandbox.isolation.uid)
    assert "cannot touch" in result.stderr
    assert not Path("/etc/ponder-owned").exists()


def test_huge_output_is_capped(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
                         limits=Limits(output_bytes=100_000, wall_seconds=10))
    assert result.killed_by == "output" and result.stdout_truncated
    assert len(result.stdout) == 100_000 and not result.timed_out
    assert result.seconds < 5


def test_big_file_hits_the_file_size_limit(sandbox: Sandbox) -> None:
    result = sandbox.run("open('big.bin', 'wb').write(b'x' * (32 * 1024 * 1024))",
                         limits=Limits(file_size_mb=1))
    assert result.killed_by == "file_size" and "File too large" in result.stderr


def test_open_files_limit(sandbox: Sandbox) -> None:
    result = sandbox.run("files = [open(f'f{i}', 'w') for i in range(500)]")
    assert result.killed_by == "open_files"


@pytest.mark.parametrize(("code", "exit_code", "stderr"), [
    ("import sys; sys.exit(0)", 0, ""),
    ("import sys; sys.exit(3)", 3, ""),
    ("import sys; sys.exit('bad input')", 1, "bad input"),
    ("raise ValueError('boom')", 1, "ValueError: boom"),
    ("import os; os._exit(42)", 42, ""),
])
def test_exit_codes(sandbox: Sandbox, code: str, exit_code: int, stderr: str) -> None:
    result = sandbox.run(code)
    assert result.exit_code == exit_code and result.killed_by is None
    assert result.ok == (exit_code == 0)
    assert stderr in result.stderr


def test_environment_is_cleared(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_API_KEY", "sk-secret")
    result = sandbox.run("import os, json\nprint(json.dumps(dict(os.environ)))")
    assert "sk-secret" not in result.stdout and "PONDER_API_KEY" not in result.stdout
    assert '"HOME"' in result.stdout


def test_result_is_a_clear_record(sandbox: Sandbox) -> None:
    result: SandboxResult = sandbox.run("print('hi')")
    assert result.ok and result.stdout == "hi\n" and result.stderr == ""
    assert result.exit_code == 0 and result.signal is None and not result.timed_out
    assert result.network_isolated == sandbox.isolation.network
    assert result.pid_isolated == sandbox.isolation.pid

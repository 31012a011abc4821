"""Processes and numbers: the CLI as a process, free ports on 127.0.0.1, child processes, memory and CPU from /proc,
bounded polling, percentiles."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], T], timeout: float, what: str, every: float = 0.2,
               describe: Callable[[], str] | None = None) -> T:
    """condition()'s first truthy value, polled every `every` s; TimeoutError after `timeout` s, saying what was
    awaited (and `describe()`: what was seen last)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; {describe()}" if describe else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{seen}")
        time.sleep(every)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of values, interpolated linearly between order statistics (numpy's default)."""
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def summary(seconds: list[float]) -> dict:
    """Median and p90 in milliseconds, and the number of calls."""
    return {"median ms": round(1000 * statistics.median(seconds), 1),
            "p90 ms": round(1000 * percentile(seconds, 0.9), 1), "calls": len(seconds)}


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of one process in MB, from /proc (0, 0 once it has gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0, 0.0
    return tuple(int(fields.get(key, "0 kB").split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """pid -> user + system CPU seconds used so far, for each of pids still running."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def children(pid: int) -> list[int]:
    """Live direct child processes of pid (zombies, already dead, are left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, IndexError, ValueError):
                continue
            if int(parent) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below pid."""
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def folder_mib(folder: Path) -> float:
    """Bytes of the files under `folder` (files deleted meanwhile count as gone), MiB."""
    total = 0
    for path in Path(folder).rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total / 2**20


def cli(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m mnist_gan ARGS...` as a user runs it, from the project's root; its output captured as text."""
    return subprocess.run([sys.executable, "-m", "mnist_gan", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def cli_process(*args, **popen) -> subprocess.Popen:
    """The same, started and left running (to be signalled or killed)."""
    return subprocess.Popen([sys.executable, "-m", "mnist_gan", *map(str, args)], cwd=ROOT, **popen)

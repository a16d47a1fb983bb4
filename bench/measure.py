"""Client-side cost of one contender: CPU seconds and peak memory of its whole process tree.

The contender runs as a child of the benchmark (python, and for the browser contenders the
Playwright node driver and every Chromium process below it); the mock portal is a separate
child and is never counted.

CPU: when the root exits, `os.wait4` returns its rusage, which already holds the CPU of
every descendant that was reaped inside the tree (the kernel adds a child's times to its
parent's when the parent waits for it). A process that leaves the tree before it dies (an
orphan re-parented to init) is not in that figure, so a sampler thread follows every process
it has ever seen and adds the last times it read of those orphans.

Memory: the sampler sums the RSS of the live tree every `interval` seconds and keeps the
peak. RSS counts pages shared between Chromium's processes once per process, so the figure
is an upper bound, the way `ps` and most dashboards would show it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_INTERVAL_S = 0.1


@dataclass(frozen=True)
class TreeUsage:
    """What one contender's process tree used, from start to exit."""

    wall_s: float
    cpu_s: float
    orphan_cpu_s: float
    peak_rss_mb: float
    peak_processes: int
    exit_code: int


@dataclass
class _Seen:
    proc: psutil.Process
    name: str = ""
    cpu_s: float = 0.0
    reaped_cpu_s: float = 0.0
    ppid: int = 0
    gone: bool = False


class TreeSampler:
    """Follows a root pid and every process that descends from it."""

    def __init__(self, root_pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_processes = 0
        self._seen: dict[tuple[int, float], _Seen] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)
        self._root = psutil.Process(root_pid)

    def start(self) -> None:
        """Start sampling in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        """Read the live tree once: register new processes, sum RSS, remember CPU times."""
        try:
            members = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            members = []
        for proc in members:
            try:
                key = (proc.pid, proc.create_time())
                if key not in self._seen:
                    self._seen[key] = _Seen(proc, name=proc.name())
            except psutil.Error:
                continue
        rss = 0
        alive = 0
        for seen in self._seen.values():
            if seen.gone:
                continue
            try:
                with seen.proc.oneshot():
                    times = seen.proc.cpu_times()
                    mem = seen.proc.memory_info().rss
                    seen.ppid = seen.proc.ppid()
                    status = seen.proc.status()
            except psutil.Error:
                seen.gone = True
                continue
            if status == psutil.STATUS_ZOMBIE:
                continue
            seen.cpu_s = times.user + times.system
            seen.reaped_cpu_s = times.children_user + times.children_system
            rss += mem
            alive += 1
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, alive)

    def orphan_cpu_s(self, tree_pids: set[int]) -> float:
        """CPU of processes last seen with a parent outside the tree: wait4 misses those."""
        total = 0.0
        for (pid, _), seen in self._seen.items():
            if pid != self.root_pid and seen.ppid not in tree_pids:
                total += seen.cpu_s + seen.reaped_cpu_s
        return total

    def tree_pids(self) -> set[int]:
        """Every pid ever seen in the tree."""
        return {pid for pid, _ in self._seen}


def run_measured(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str],
                 stdout_path: Path, timeout_s: float) -> TreeUsage:
    """Run `argv` as a child, sample its tree until it exits, and return what it used."""
    with stdout_path.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        deadline = started + timeout_s
        status = 0
        rusage = None
        try:
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    _, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.02)
        finally:
            wall = time.perf_counter() - started
            sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it; tell Popen
    assert rusage is not None
    tree = sampler.tree_pids()
    orphans = sampler.orphan_cpu_s(tree)
    return TreeUsage(
        wall_s=wall,
        cpu_s=rusage.ru_utime + rusage.ru_stime + orphans,
        orphan_cpu_s=orphans,
        peak_rss_mb=sampler.peak_rss / 2**20,
        peak_processes=sampler.peak_processes,
        exit_code=proc.returncode,
    )

"""Client-side cost of one contender: CPU seconds and peak memory of its whole process tree.

The contender runs as a child of the benchmark (python, and for the browser contenders the
Playwright node driver and every Chromium process below it); the mock portal is another child
and is never counted.

CPU comes from the kernel, not from sampling. The benchmark makes itself a child subreaper
(Linux prctl), so a process of the contender's tree whose parent dies first (Chromium's
zygotes and renderers when the browser process exits) is re-parented to the benchmark rather
than to init. The benchmark reaps the root and every such orphan, and the CPU of the tree is
then the growth of its own RUSAGE_CHILDREN: every process's user + system time, counted once,
up to its last instruction. Sampling `cpu_times()` instead misses whatever a process burns
after its last sample and, worse, whatever its reaped children burnt when the reaper is init.

Memory: a sampler thread sums the RSS of the live tree every `interval` seconds and keeps the
peak. RSS counts pages shared between Chromium's processes once per process, so the figure
is an upper bound, the way `ps` and most dashboards would show it; the sampler also sums PSS
(proportional set size), which splits shared pages between the processes that map them. The
same sampler notes each process's own CPU, as a breakdown by process kind (python, node,
chromium:renderer, …), the executable every Chromium process really ran (a wrapper script or a
configured path may hide which one), and the machine's 1-minute load average while it ran.
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_INTERVAL_S = 0.1
PR_SET_CHILD_SUBREAPER = 36
# After the root exits, how long its orphans get to exit by themselves before they are killed.
ORPHAN_GRACE_S = 10.0
# For this long after it starts, a process's kind is read again at every sample.
KIND_SETTLE_S = 3.0


@dataclass(frozen=True)
class TreeUsage:
    """What one contender's process tree used, from start to exit."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    # Proportional set size: shared pages split between the processes that map them. Summing
    # RSS over Chromium's processes counts its shared memory once per process.
    peak_pss_mb: float
    peak_processes: int
    exit_code: int
    # Own CPU per process kind as last sampled: where the time went. Slightly short of cpu_s,
    # which also holds what each process did after its last sample.
    cpu_by_process: dict[str, float]
    orphans_reaped: int
    # Distinct executables of the tree's Chromium processes (browser, renderers, …).
    chromium_executables: tuple[str, ...] = ()
    # The 1-minute load average just before the start, while running (mean, max), at the end.
    load_1m_before: float = 0.0
    load_1m_during: float = 0.0
    load_1m_during_max: float = 0.0
    load_1m_after: float = 0.0


def _pss(pid: int) -> int:
    """Bytes of proportional set size of one process (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class _Seen:
    proc: psutil.Process
    name: str
    cpu_s: float = 0.0
    gone: bool = False
    exe: str = ""


class TreeSampler:
    """Follows a root pid and every process that descends from it, for RSS and a breakdown."""

    def __init__(self, root_pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self._seen: dict[tuple[int, float], _Seen] = {}
        self.load_1m: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)
        self._root = psutil.Process(root_pid)

    def start(self) -> None:
        """Start sampling in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        """Read the live tree once: register new processes, sum RSS, note CPU times."""
        self.load_1m.append(os.getloadavg()[0])
        try:
            members = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            members = []
        for proc in members:
            try:
                key = (proc.pid, proc.create_time())
                seen = self._seen.get(key)
                if seen is None:
                    seen = self._seen[key] = _Seen(proc, name=_kind(proc))
                elif time.time() - key[1] < KIND_SETTLE_S:
                    # A fresh process may still be the wrapper script (/usr/bin/chromium execs
                    # the real one) or a fork that has not taken its --type yet.
                    seen.name = _kind(proc)
                else:
                    continue
                if seen.name.startswith("chromium:"):
                    seen.exe = proc.exe()
            except psutil.Error:
                continue
        rss = 0
        pss = 0
        alive = 0
        # Processes seen once stay followed: an orphan leaves the parent links psutil walks.
        for seen in self._seen.values():
            if seen.gone:
                continue
            try:
                with seen.proc.oneshot():
                    if seen.proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    times = seen.proc.cpu_times()
                    rss += seen.proc.memory_info().rss
                    pss += _pss(seen.proc.pid)
            except psutil.Error:
                seen.gone = True
                continue
            seen.cpu_s = times.user + times.system
            alive += 1
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, alive)

    def chromium_executables(self) -> tuple[str, ...]:
        """The distinct executables that the tree's Chromium processes ran."""
        return tuple(sorted({seen.exe for seen in self._seen.values() if seen.exe}))

    def cpu_by_process(self) -> dict[str, float]:
        """Own CPU seconds per process kind, as last sampled."""
        out: dict[str, float] = {}
        for seen in self._seen.values():
            out[seen.name] = round(out.get(seen.name, 0.0) + seen.cpu_s, 2)
        return out


def _kind(proc: psutil.Process) -> str:
    """Process kind: the executable's name, with Chromium's --type (renderer, gpu-process, …).

    Renderers forked by the zygote keep the zygote's command line, so they show as zygote.
    """
    name = Path(proc.exe()).name if proc.exe() else proc.name()
    if name.startswith("chrom"):
        kinds = [a.split("=", 1)[1] for a in proc.cmdline() if a.startswith("--type=")]
        name = f"chromium:{kinds[0]}" if kinds else "chromium:browser"
    return name


def become_subreaper() -> None:
    """Adopt orphaned descendants instead of init, so their CPU is counted (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reap_orphans(keep: set[int]) -> int:
    """Reap every child except `keep` (the portal); kill what is still alive after the grace."""
    me = psutil.Process()
    deadline = time.monotonic() + ORPHAN_GRACE_S
    reaped = 0
    while True:
        orphans = [c for c in me.children() if c.pid not in keep]
        if not orphans:
            return reaped
        for child in orphans:
            pid, _ = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                reaped += 1
            elif time.monotonic() > deadline:
                child.kill()
        time.sleep(0.05)


def run_measured(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str],
                 stdout_path: Path, timeout_s: float) -> TreeUsage:
    """Run `argv` as a child, sample its tree until it exits, and return what it used."""
    become_subreaper()
    keep = {c.pid for c in psutil.Process().children()}
    cpu_before = _children_cpu_s()
    load_before = os.getloadavg()[0]
    with stdout_path.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            wall = time.perf_counter() - started
            sampler.stop()
    orphans = _reap_orphans(keep)
    return TreeUsage(
        wall_s=wall,
        cpu_s=_children_cpu_s() - cpu_before,
        peak_rss_mb=sampler.peak_rss / 2**20,
        peak_pss_mb=sampler.peak_pss / 2**20,
        peak_processes=sampler.peak_processes,
        exit_code=proc.returncode,
        cpu_by_process=sampler.cpu_by_process(),
        orphans_reaped=orphans,
        chromium_executables=sampler.chromium_executables(),
        load_1m_before=load_before,
        load_1m_during=(sum(sampler.load_1m) / len(sampler.load_1m)
                        if sampler.load_1m else load_before),
        load_1m_during_max=max(sampler.load_1m, default=load_before),
        load_1m_after=os.getloadavg()[0],
    )

"""Where a Ray run's driver memory goes: its anonymous (private) memory and the pages of Ray's shared-memory
object store it has written, sampled every 50 ms, next to the peak RSS (VmHWM) that counts both.

    python scripts/driver_memory.py [SCENARIO] [OVERRIDE ...]     # default: scenarios/web_10m.toml, 4 ticks

ru_maxrss / VmHWM count every resident page mapped in the process, so a driver that ``ray.put`` s each tick's
plan also counts the object store's pages it wrote; RssAnon is what the driver itself holds.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def status() -> dict[str, int]:
    """VmHWM, VmRSS, RssAnon, RssFile and RssShmem of this process, in MiB."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) // 1024
    return out


def main(argv: list[str]) -> None:
    import simweb

    path = argv[0] if argv and not "=" in argv[0] else str(REPO / "scenarios" / "web_10m.toml")
    overrides = [a for a in argv if "=" in a] or ["run.ticks=4"]
    peak = dict.fromkeys(("RssAnon", "RssShmem", "RssFile"), 0)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = status()
            for key in peak:
                peak[key] = max(peak[key], now[key])
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    res = simweb.run(simweb.load_scenario(path, overrides), executor="ray")
    done.set()
    end = status()
    print(f"{path} {' '.join(overrides)}: simulation {res.manifest['wall_time_s']:.1f} s; driver peak RSS (VmHWM) "
          f"{end['VmHWM']} MiB; sampled peaks: anonymous {peak['RssAnon']} MiB, object-store pages "
          f"{peak['RssShmem']} MiB, files {peak['RssFile']} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])

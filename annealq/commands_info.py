"""The ``annealq`` commands that inspect rather than quantize: ``solvers`` and ``cache …``.

Kept apart from :mod:`annealq.commands` so that they start without torch.
"""

from __future__ import annotations

import os

from annealq.cache import CacheStore, default_cache_path
from annealq.cache.repair import check_cache, repair_cache
from annealq.credentials import token_configured
from annealq.registry import available_samplers


def _store(args):
    path = args.cache or default_cache_path()
    if not os.path.exists(path):
        raise ValueError(f"no cache at {path}")
    return CacheStore(path)


def run_cache_stats(args) -> int:
    with _store(args) as store:
        stats = store.stats()
    print(
        f"cache {stats['path']}: {stats['entries']} entries, {stats['bytes'] / 1e6:.2f} MB "
        "('annealq cache check' verifies them)"
    )
    for solver, count in sorted(stats["solvers"].items()):
        print(f"  {solver:<20}{count:>8} entries")
    last = stats.get("last_run")
    if last:
        total = last["hits"] + last["misses"]
        rate = f" ({last['hits'] / total:.0%} hits)" if total else ""
        print(f"last run: {last['hits']} hits, {last['misses']} misses{rate}")
    return 0


def run_cache_clear(args) -> int:
    with _store(args) as store:
        removed = store.clear(solver=args.solver)
    scope = f" of solver {args.solver!r}" if args.solver else ""
    print(f"removed {removed} cache entries{scope}")
    return 0


def run_cache_check(args) -> int:
    report = check_cache(args.cache or default_cache_path())
    print("\n".join(report.lines()))
    return 0 if report.healthy else 1


def run_cache_repair(args) -> int:
    report, kept = repair_cache(args.cache or default_cache_path())
    dropped = report.bad_checksum + report.unreadable + report.lost_rows
    print(
        f"cache {report.path}: kept {kept} valid entries, dropped {dropped} "
        f"({report.bad_checksum} failing their checksum, {report.unreadable} unreadable, "
        f"{report.lost_rows} in damaged pages); the repaired file replaced the old one"
    )
    return 0


def run_solvers(args) -> int:
    statuses = available_samplers()
    width = max(len(s.name) for s in statuses) + 2
    for status in statuses:
        state = "yes" if status.available else "no "
        why = f"  ({status.reason})" if status.reason else ""
        print(f"{status.name:<{width}}{state}  {status.description}{why}")
    print(f"\nD-Wave API token: {'configured' if token_configured() else 'not configured'}")
    return 0

"""Keep the in-process worker busy with one variant so a sampling profiler can attach.

    python bench/profile_worker.py --variant tf --seconds 40 &
    py-spy record --pid $! --duration 30 --format raw -o /tmp/tf.txt --nonblocking
    python bench/profile_worker.py --summarize /tmp/tf.txt      # self/total time by function

Variants: ``hw`` (hand-written 5 activities), ``tf`` (5 chunks, activity),
``tf_local``, ``hw_local``. Runs batches of 50 concurrent executions until the time is up.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def summarize(path: str, top: int = 40) -> None:
    """Aggregate py-spy ``--format raw`` (collapsed stacks) into self and total shares."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
        leaf_file = frames[-1].split("(")[-1].split(":")[0]
        files[_area(leaf_file)] += n
    print(f"{samples} samples\n\nby area (self time):")
    for area, n in files.most_common(20):
        print(f"  {n / samples:6.1%}  {area}")
    print("\nself time:")
    for frame, n in own.most_common(top):
        print(f"  {n / samples:6.1%}  {frame[:150]}")
    print("\ntotal time (triggerflow_temporal and bench frames):")
    for frame, n in total.most_common(400):
        if "triggerflow_temporal" in frame or "/bench/" in frame:
            print(f"  {n / samples:6.1%}  {frame[:150]}")


def _area(path: str) -> str:
    for marker in (
        "triggerflow_temporal",
        "temporalio/worker/workflow_sandbox",
        "temporalio/worker",
        "temporalio/converter",
        "temporalio/bridge",
        "temporalio/contrib/pydantic",
        "pydantic",
        "google/protobuf",
        "asyncio",
        "copy.py",
        "json",
        "bench",
        "temporalio",
    ):
        if marker in path:
            return marker
    return path.rsplit("/", 1)[-1] or "?"


async def drive(variant: str, seconds: float, concurrent: int) -> None:
    from bench import _flows
    from bench._common import bench_env, dev_server, log
    from bench.overhead import hw_runner, tf_runner

    async with dev_server() as env:
        async with bench_env(env, _flows.ALL_FLOWS) as b:
            n = _flows.THROUGHPUT_CHAIN_LENGTH
            run = {
                "hw": hw_runner(b, n),
                "hw_local": hw_runner(b, n, local=True),
                "tf": tf_runner(_flows.THROUGHPUT_FLOWS["activity"]),
                "tf_local": tf_runner(_flows.THROUGHPUT_FLOWS["local_activity"]),
            }[variant]
            await run()
            log("PROFILE-READY")
            deadline = time.monotonic() + seconds
            done = 0
            while time.monotonic() < deadline:
                await asyncio.gather(*(run() for _ in range(concurrent)))
                done += concurrent
            log(f"{variant}: {done} executions")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="tf")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--summarize")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    asyncio.run(drive(args.variant, args.seconds, args.concurrent))


if __name__ == "__main__":
    main()

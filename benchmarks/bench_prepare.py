"""Throughput and peak memory of real-dataset preparation (run by hand, not part of the tests).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_prepare.py [--num 20000] [--workers 2]
        [--resolution 64] [--corpus DIR] [--layout classes|flat]

Generates ``--num`` JPEGs (quality 90) of random sizes 200-500 px per side with smooth random
content (a bicubic-upsampled coarse grid plus a finer, weaker one, so they compress like photos
rather than like noise or flat colour) into a temporary folder, or into ``--corpus DIR``, which
is reused when it already holds that many images. Generation is not timed.

Preparation runs in a CHILD process so its memory is measured alone: the child reports its own
peak RSS (``RUSAGE_SELF``) and the largest peak among its pool workers (``RUSAGE_CHILDREN``,
filled in when the pool reaps them; ``ru_maxrss`` is in KiB on Linux). The bound checked is the
conservative sum ``main + workers * largest worker`` (copy-on-write pages shared after fork are
counted twice), which must stay below 1 GiB whatever ``--num`` is: preparation streams.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
RSS_LIMIT_KIB = 1024 * 1024  # 1 GiB
NUM_CLASSES = 10


def _make_jpeg(args: tuple[str, int]) -> None:
    """Write one smooth random JPEG (deterministic in its index)."""
    path, index = args
    rng = np.random.default_rng(index)
    width, height = (int(v) for v in rng.integers(200, 501, size=2))
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    fine = Image.fromarray(rng.integers(0, 256, (height // 12, width // 12, 3), dtype=np.uint8))
    base = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    detail = np.asarray(fine.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    pixels = np.clip(0.8 * base + 0.2 * detail, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)


def _corpus_paths(corpus: Path, num: int) -> list[tuple[str, int]]:
    return [(str(corpus / f"class_{i % NUM_CLASSES:02d}" / f"img_{i:06d}.jpg"), i) for i in range(num)]


def ensure_corpus(corpus: Path, num: int, workers: int) -> float:
    """Create the missing images of the corpus; return the seconds spent generating."""
    jobs = [job for job in _corpus_paths(corpus, num) if not os.path.exists(job[0])]
    for c in range(NUM_CLASSES):
        (corpus / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if jobs:
        print(f"generating {len(jobs)} JPEGs in {corpus} ...", flush=True)
        with multiprocessing.Pool(max(1, workers)) as pool:
            for _ in pool.imap_unordered(_make_jpeg, jobs, chunksize=64):
                pass
    return time.perf_counter() - start


def child_main(args: argparse.Namespace) -> None:
    """Runs in the child process: prepare, then print one JSON line with time and memory."""
    sys.path.insert(0, str(REPO_ROOT))
    from seqgan.data.prepare import prepare_image_folder

    start = time.perf_counter()
    manifest = prepare_image_folder(
        args.corpus,
        args.out,
        resolution=args.resolution,
        layout=args.layout,
        max_image_pixels=89_478_485,
        small_images="upscale",
        workers=args.workers,
        progress=False,
    )
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "candidates": manifest["candidates"],
                "written": manifest["written"],
                "skipped": manifest["skipped"],
                "self_maxrss_kib": own.ru_maxrss,
                "workers_maxrss_kib": workers.ru_maxrss,
                "self_cpu_s": own.ru_utime + own.ru_stime,
                "workers_cpu_s": workers.ru_utime + workers.ru_stime,
            }
        )
    )


def _write_record(args: argparse.Namespace, lines: list[str]) -> None:
    """The report as docs/real-data.md's statement cites it: command, machine and date first."""
    from seqgan.train.runtime import machine_info  # imports torch: only here, after the measured child

    options = f"--num {args.num} --workers {args.workers} --resolution {args.resolution} --layout {args.layout}"
    header = [
        f"# benchmarks/bench_prepare.py {options}",
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine_info()['cpu_model']}, {os.cpu_count()} CPUs",
    ]
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text("\n".join(header + lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=20000, help="number of JPEGs (default 20000)")
    parser.add_argument("--workers", type=int, default=2, help="preparation workers (default 2)")
    parser.add_argument("--resolution", type=int, default=64, help="output side (default 64)")
    parser.add_argument("--layout", choices=("classes", "flat"), default="classes")
    parser.add_argument("--corpus", type=Path, default=None, help="reuse/generate the corpus here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--record", type=Path, default=None, help="also write the report here (results/evidence/bench_prepare.txt)"
    )
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    try:
        corpus = args.corpus if args.corpus is not None else tmp / "corpus"
        gen_seconds = ensure_corpus(corpus, args.num, args.workers)
        print(f"corpus: {corpus} ({args.num} images; generation {gen_seconds:.1f} s, not timed)")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
        command = [
            sys.executable,
            __file__,
            "--child",
            "--corpus",
            str(corpus),
            "--out",
            str(tmp / "out"),
            "--resolution",
            str(args.resolution),
            "--workers",
            str(args.workers),
            "--layout",
            args.layout,
        ]
        load_before = os.getloadavg()[0]
        wall = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - wall
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"child failed with exit code {proc.returncode}")
        lines: list[str] = []

        def say(text: str) -> None:
            print(text)
            lines.append(text)

        report = json.loads(proc.stdout.strip().splitlines()[-1])
        # Includes the generation pool if it ran in this process; reported for completeness.
        all_children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        total_kib = report["self_maxrss_kib"] + args.workers * report["workers_maxrss_kib"]
        rate = report["candidates"] / report["seconds"]
        say(
            f"prepared {report['written']} / {report['candidates']} images "
            f"(skipped {report['skipped']}) to {args.resolution}px with {args.workers} workers"
        )
        say(
            f"time: {report['seconds']:.2f} s in prepare_image_folder ({wall:.2f} s child wall incl. interpreter start)"
        )
        say(
            f"throughput: {rate:.0f} images/s "
            f"(load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs)"
        )
        cpu = report["self_cpu_s"] + report["workers_cpu_s"]
        say(
            f"CPU: {report['self_cpu_s']:.1f} s main process + {report['workers_cpu_s']:.1f} s "
            f"pool workers = {1e3 * cpu / report['candidates']:.2f} ms per image "
            f"(= {report['candidates'] / cpu:.0f} images/s per fully available core)"
        )
        say(
            f"peak RSS: child main {report['self_maxrss_kib'] / 1024:.0f} MiB, "
            f"largest pool worker {report['workers_maxrss_kib'] / 1024:.0f} MiB, "
            f"conservative total {total_kib / 1024:.0f} MiB "
            f"(max over all descendants seen by this process: {all_children_kib / 1024:.0f} MiB)"
        )
        say("OK: peak RSS < 1 GiB" if total_kib < RSS_LIMIT_KIB else f"FAILED: peak RSS {total_kib} KiB >= 1 GiB")
        if args.record is not None:
            _write_record(args, lines)
        assert total_kib < RSS_LIMIT_KIB, f"peak RSS {total_kib} KiB >= 1 GiB"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

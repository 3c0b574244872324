#!/usr/bin/python3
"""Runs a sweep of `tpusim run` points and appends one row per finished point to a results
table (CSV or SQLite), locally in a process pool, as a Slurm job array, or through GNU
parallel. docs/sweeps.md is the walk-through; `scripts/sweep.py --help` lists the options.
"""

import argparse
import concurrent.futures
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tpusweep import runner, spec, table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = "sweep.py"


def fail(msg, code=2):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(code)


def find_tpusim(arg):
    """--tpusim, else $TPUSIM, else build/tpusim in the repository."""
    for source, path in (("--tpusim", arg), ("$TPUSIM", os.environ.get("TPUSIM"))):
        if path:
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                fail(f"<command line>: {source}: expected an executable tpusim, found '{path}'")
            return os.path.abspath(path)
    path = os.path.join(REPO, "build", "tpusim")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        fail(f"<command line>: tpusim: expected {path} (build it) or --tpusim PATH or $TPUSIM, "
             "found none")
    return path


OPTION_TYPES = ("TEXT", "INT", "UINT", "FLOAT")


def tool_output(args, limit=4 << 20, timeout=30):
    """What `args` prints on stdout, as text (bytes that are not UTF-8 replaced), or None when
    it cannot be run, fails, takes over `timeout` seconds or prints more than `limit` bytes
    (a wrong --tpusim must not hang the sweep or fill memory)."""
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
    except (OSError, ValueError):
        return None
    deadline = time.monotonic() + timeout
    chunks, total = [], 0
    with proc:
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if not select.select([proc.stdout], [], [], left)[0]:
                    continue
                data = os.read(proc.stdout.fileno(), 65536)
                if not data:
                    break
                total += len(data)
                if total > limit:
                    return None
                chunks.append(data)
            if proc.wait(timeout=max(0.1, deadline - time.monotonic())) != 0:
                return None
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.poll() is None:
                proc.kill()
    return b"".join(chunks).decode("utf-8", "replace")


def run_options(tpusim):
    """`tpusim run`'s long options, read from its --help: name -> {"type": TEXT, INT, FLOAT or
    None for a flag, "repeatable": bool, "needs": [...], "excludes": [...]} (None if that
    fails)."""
    out = tool_output([tpusim, "run", "--help"])
    if out is None:
        return None
    options = {}
    for m in re.finditer(r"^\s+(?:-\w,)?--([a-z][a-z0-9-]*)(.*)$", out, re.M):
        words = m.group(2).split()
        info = {"type": None, "repeatable": False, "needs": [], "excludes": []}
        if words and words[0].split(":")[0] in OPTION_TYPES:
            info["type"] = "INT" if words[0].split(":")[0] == "UINT" else words[0].split(":")[0]
            info["repeatable"] = len(words) > 1 and words[1] == "..."
        for i, w in enumerate(words):
            if w in ("Needs:", "Excludes:"):
                for x in words[i + 1:]:
                    if not x.startswith("--"):
                        break
                    info["needs" if w == "Needs:" else "excludes"].append(x[2:])
        options[m.group(1)] = info
    options.pop("help", None)
    return options or None


def arch_keys(tpusim):
    """The architecture's keys, read from `tpusim config --schema-markdown` (None if that fails)."""
    out = tool_output([tpusim, "config", "--schema-markdown"])
    if out is None:
        return None
    arch = out.split("## Pod")[0]
    keys = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", arch, re.M))
    return keys or None


def fmt_duration(s):
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def figures(row):
    """The key figures of a finished point, for its progress line."""
    if row["status"] != "ok":
        first = (row.get("error") or "").strip().splitlines()
        msg = first[-1] if first else ""
        return msg if len(msg) <= 160 else msg[:157] + "..."
    parts = []
    if row.get("total_cycles") is not None:
        parts.append(f"{row['total_cycles']:>12,d} cycles")
    if row.get("utilization") is not None:
        parts.append(f"util {100 * row['utilization']:5.1f}%")
    if row.get("achieved_tops") is not None:
        parts.append(f"{row['achieved_tops']:8.2f} TOPS")
    hbm = (row.get("memory.hbm_read_bytes") or 0) + (row.get("memory.hbm_write_bytes") or 0)
    if hbm:
        parts.append(f"HBM {hbm / 1e6:.1f} MB")
    if row.get("pod.chips") is not None:
        parts.append(f"{row['pod.chips']} chips")
    if row.get("pod.step_seconds") is not None:
        parts.append(f"step {row['pod.step_seconds'] * 1e3:.3f} ms")
    if row.get("pod.scaling_efficiency") is not None:
        parts.append(f"scaling {100 * row['pod.scaling_efficiency']:.1f}%")
    return "  ".join(parts)


class Progress:
    def __init__(self, sweep, already, pending):
        self.total, self.done, self.pending = len(sweep.points), already, pending
        self.finished, self.wall = 0, 0.0
        self.t0 = time.monotonic()
        self.width = len(str(self.total))
        self.label_width = max(len(p.label) for p in sweep.points)

    def line(self, point, row, wall, counter=None):
        self.done += 1
        self.finished += 1
        self.wall += wall
        left = self.pending - self.finished
        if left:
            per = (time.monotonic() - self.t0) / self.finished
            eta = f"ETA {fmt_duration(per * left)}"
        else:
            eta = f"done in {fmt_duration(time.monotonic() - self.t0)}"
        counter = counter or f"{self.done:>{self.width}}/{self.total}"
        print(f"[{counter}] {row['status']:<9} {point.hash}  {point.label:<{self.label_width}}  "
              f"{figures(row)}  ({wall:.1f} s)  | {eta}", flush=True)


def write_slurm(args, sweep, script_path, command):
    n = len(sweep.points)
    throttle = f"%{args.jobs}" if args.jobs else ""
    logs = os.path.join(os.path.abspath(args.out), "slurm")
    os.makedirs(logs, exist_ok=True)
    lines = [
        "#!/bin/bash",
        f"# Slurm job array for sweep '{sweep.name}' ({n} points), written by scripts/sweep.py.",
        f"# Submit: sbatch {shlex.quote(script_path)}   (task i runs point i; results go to",
        f"# {args.results}; points already there are skipped, so resubmitting resumes)",
        f"#SBATCH --job-name=tpusim-{sweep.name}",
        f"#SBATCH --array=0-{n - 1}{throttle}",
        f"#SBATCH --output={logs}/%A_%a.out",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=1",
    ]
    for k, v in sweep.slurm.items():
        lines.append(f"#SBATCH --{k}={v}")
    lines += [
        "set -euo pipefail",
        ': "${SLURM_ARRAY_TASK_ID:?submit this script with sbatch, or set SLURM_ARRAY_TASK_ID}"',
        f"cd {shlex.quote(os.getcwd())}",
        "exec " + " ".join(shlex.quote(c) for c in command) + ' --run-point "$SLURM_ARRAY_TASK_ID"',
        "",
    ]
    with open(script_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.chmod(script_path, 0o755)


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        """One line, like every other bad input (argparse would print the usage first)."""
        fail(f"<command line>: {message} (see --help)")


def first_non_directory(path):
    """The first existing component of `path` (an absolute directory) that is not a
    directory, or None: makedirs would fail there with a bare "file exists"."""
    probe = os.sep
    for part in path.split(os.sep):
        if not part:
            continue
        probe = os.path.join(probe, part)
        if not os.path.exists(probe):
            return None
        if not os.path.isdir(probe):
            return probe
    return None


def main():
    ap = ArgumentParser(
        prog="sweep.py", description="Run a tpusim sweep and collect one results row per point.",
        epilog="docs/sweeps.md describes the sweep file and the results table.")
    ap.add_argument("sweep", help="sweep YAML file")
    ap.add_argument("--jobs", "-j", type=int, help="points run at once (default: CPU count); "
                    "with --slurm, the most array tasks running at once")
    ap.add_argument("--out", help="sweep directory (default runs/sweeps/NAME); each point runs "
                    "in OUT/points/HASH")
    ap.add_argument("--results", help="results table, .csv or .sqlite (default OUT/results.csv)")
    ap.add_argument("--tpusim", help="tpusim binary (default $TPUSIM, else build/tpusim)")
    ap.add_argument("--timeout", type=float, help="seconds a point may run before it is "
                    "killed and recorded as timeout")
    ap.add_argument("--retry-failed", action="store_true",
                    help="also run points whose row records a failure (the new row replaces it)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="list the points, their hashes and commands; run nothing")
    mode.add_argument("--emit-commands", action="store_true",
                      help="print one command per pending point (for GNU parallel)")
    mode.add_argument("--slurm", action="store_true",
                      help="write OUT/sweep.slurm, a job array with one task per point")
    mode.add_argument("--run-point", metavar="KEY_OR_INDEX",
                      help="run one point, by 0-based index or hash, and record its row")
    args = ap.parse_args()
    if args.jobs is not None and args.jobs < 1:
        fail(f"<command line>: --jobs: expected an integer >= 1, found {args.jobs}")
    if args.timeout is not None and not (0 < args.timeout < float("inf")):
        fail(f"<command line>: --timeout: expected seconds > 0, found {args.timeout}")
    for opt, v in (("--out", args.out), ("--results", args.results)):
        if v is not None and (not v or any(ord(c) < 32 for c in v)):
            fail(f"<command line>: {opt}: expected a path, found {v!r}")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        fail(f"<command line>: --out: expected a directory (new or existing), found the file "
             f"'{args.out}'")
    if args.out and first_non_directory(os.path.abspath(args.out)) is not None:
        fail(f"<command line>: --out: expected a directory (new or existing), found '{args.out}', "
             f"below '{first_non_directory(os.path.abspath(args.out))}', which is not a directory")

    tpusim = find_tpusim(args.tpusim)
    # Without these the sweep could not check its values before running them: a tpusim that
    # cannot describe itself is refused rather than every point failing one by one.
    known, keys = run_options(tpusim), arch_keys(tpusim)
    for what, got in (("`run --help` lists its options", known),
                      ("`config --schema-markdown` lists its keys", keys)):
        if got is None:
            fail(f"<command line>: --tpusim: expected a tpusim whose {what}, found {tpusim}, "
                 "whose does not (is it a tpusim build?)")
    try:
        sweep = spec.load(args.sweep, known, keys)
    except spec.SweepError as e:
        fail(str(e))
    if any("seed" in p.options for p in sweep.points) and "seed" not in known:
        fail(f"{args.sweep}: seeds: expected a tpusim whose run command takes --seed, "
             f"found {tpusim} without it")
    # A bad --run-point is refused before anything is created.
    point = None
    if args.run_point is not None:
        try:
            point = sweep.find(args.run_point)
        except spec.SweepError as e:
            fail(str(e))
    # The table's path: given, or from --out, or from the sweep's name; a message names the
    # one the user wrote.
    if args.results:
        results_source = "<command line>: --results"
    elif args.out:
        results_source = "<command line>: --out (the results table OUT/results.csv)"
    else:
        results_source = (f"{args.sweep}: name (the results table "
                          f"runs/sweeps/NAME/results.csv)")
    args.out = args.out or os.path.join("runs", "sweeps", sweep.name)
    args.results = args.results or os.path.join(args.out, "results.csv")
    try:
        results = table.open_table(args.results)
    except table.TableError as e:
        fail(str(e))
    results_dir = os.path.dirname(os.path.abspath(args.results))
    # Where the table goes must be usable before any point runs, not after the last one.
    if os.path.isdir(args.results):
        fail(f"{results_source}: expected a table file, found the directory '{args.results}'")
    if not (args.dry_run or args.emit_commands):
        blocker = first_non_directory(results_dir)
        if blocker is not None:
            fail(f"{results_source}: expected a table file that can be written, found "
                 f"'{args.results}', below '{blocker}', which is not a directory")
        new_dirs = []  # made here, removed again if the table cannot be opened
        probe = results_dir
        while not os.path.exists(probe) and probe != os.path.dirname(probe):
            new_dirs.append(probe)
            probe = os.path.dirname(probe)
        try:
            os.makedirs(results_dir, exist_ok=True)
            with open(args.results, "a", encoding="utf-8"):
                pass
        except OSError as e:
            for d in new_dirs:  # deepest first
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            fail(f"{results_source}: expected a table file that can be written, found "
                 f"'{args.results}': {(e.strerror or str(e)).lower()}")

    def order(cols):
        return runner.order_columns(cols, sweep.point_column_names)

    def put(row):
        try:
            results.put(row, order)
        except table.TableError as e:  # damaged by something else while the sweep ran
            fail(f"{e} (point {row['hash']} not recorded)")

    def is_done(status):
        return status is not None and (status == "ok" or not args.retry_failed)

    try:
        recorded = results.hashes()
    except table.TableError as e:
        fail(str(e))
    except Exception as e:  # a damaged table is bad input, not a crash
        fail(f"{args.results}: results table: expected a readable table, found {e}")
    done = {p.hash for p in sweep.points if is_done(recorded.get(p.hash))}
    pending = [p for p in sweep.points if p.hash not in done]

    command = [sys.executable, os.path.abspath(__file__), os.path.abspath(args.sweep),
               "--out", os.path.abspath(args.out), "--results", os.path.abspath(args.results),
               "--tpusim", tpusim]
    if args.timeout:
        command += ["--timeout", repr(args.timeout)]
    if args.retry_failed:
        command.append("--retry-failed")

    if args.dry_run:
        for p in sweep.points:
            state = "done" if p.hash in done else "pending"
            print(f"{p.index:>4} {p.hash} {state:<7} {p.label}")
            print("       " + " ".join(shlex.quote(a) for a in
                                      p.args(tpusim, os.path.join(args.out, "points", p.hash))))
        print(f"sweep {sweep.name}: {len(sweep.points)} points, {len(done)} in {args.results}, "
              f"{len(pending)} to run")
        return 0
    if args.emit_commands:
        for p in pending:
            print(f"cd {shlex.quote(os.getcwd())} && " + " ".join(shlex.quote(c) for c in command)
                  + f" --run-point {p.hash}")
        return 0
    if args.slurm:
        path = os.path.join(args.out, "sweep.slurm")
        os.makedirs(args.out, exist_ok=True)
        write_slurm(args, sweep, os.path.abspath(path), command)
        print(f"wrote {path}: {len(sweep.points)} array tasks ({len(pending)} points pending); "
              f"submit with: sbatch {path}")
        if len(sweep.points) > 1001:
            print(f"note: {len(sweep.points)} tasks exceed Slurm's default MaxArraySize (1001); "
                  "check `scontrol show config | grep MaxArraySize` or split the sweep",
                  file=sys.stderr)
        return 0

    run = runner.Runner(tpusim, args.out, args.timeout)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    if point is not None:
        p = point
        if p.hash in done:
            print(f"point {p.index} ({p.hash}) is already in {args.results}: {recorded[p.hash]}")
            return 0
        try:
            row, wall = run.run(p, results_dir)
        except KeyboardInterrupt:
            run.stop()
            print(f"{PROG}: interrupted; point {p.hash} not recorded", file=sys.stderr)
            return 130
        put(row)
        Progress(sweep, 0, 1).line(p, row, wall, counter=f"point {p.index} of {len(sweep.points)}")
        return 0 if row["status"] == "ok" else 1

    jobs = args.jobs or os.cpu_count() or 1
    print(f"sweep {sweep.name}: {len(sweep.points)} points, {len(done)} already in "
          f"{args.results}, {len(pending)} to run" +
          (f", {min(jobs, len(pending))} at a time" if pending else ""), flush=True)
    progress = Progress(sweep, len(done), len(pending))
    failed = 0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(run.run, p, results_dir): p for p in pending}
        for fut in concurrent.futures.as_completed(futures):
            row, wall = fut.result()
            if row is None:
                continue
            put(row)
            failed += row["status"] != "ok"
            progress.line(futures[fut], row, wall)
    except KeyboardInterrupt:
        run.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        print(f"{PROG}: interrupted after {progress.finished} of {len(pending)} points; "
              f"the same command resumes", file=sys.stderr)
        return 130
    pool.shutdown(wait=True)
    ok = len(pending) - failed
    print(f"sweep {sweep.name}: {ok} ok, {failed} failed of {len(pending)} run "
          f"({len(done)} from before); results: {args.results}")
    if failed:
        print(f"failed points: see the error column, or {os.path.join(args.out, 'points')}"
              "/HASH/stderr.txt", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Tests of scripts/sweep.py: expansion and hashing, local runs, resume, failures, both table
formats, the Slurm array script and GNU parallel. Each runs tiny timing-only sweeps."""

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import textwrap
import time
import unittest

import helpers
from helpers import PYTHON, SWEEP, run
from tpusweep import spec, table


class TempDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tpusim-sweep-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text):
        with open(self.path(name), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return self.path(name)

    def rows(self, results):
        return table.open_table(results).rows()


class Expansion(TempDir):
    """SweepExpansion: grid x points x seeds, hashes, labels and validation errors."""

    def test_grid_points_and_seeds_multiply(self):
        f = self.write("s.yaml", f"""\
            base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}, no-functional: true}}
            grid:
              set: {{mxu.rows: [32, 64, 128]}}
              batch: [1, 8]
            points:
              - set: {{mxu.cols: 32}}
              - set: {{mxu.cols: 64}}
            seeds: [1, 2]
            """)
        s = spec.load(f)
        self.assertEqual(len(s.points), 2 * 3 * 2 * 2)
        self.assertEqual(len({p.hash for p in s.points}), len(s.points))
        self.assertEqual(s.name, "s")
        first = s.points[0]
        self.assertEqual(first.options["set"], {"mxu.rows": 32, "mxu.cols": 32})
        self.assertEqual(first.options["seed"], 1)
        self.assertEqual(first.args("tpusim", "OUT"), [
            "tpusim", "run", "--arch", helpers.ARCH, "--batch", "1", "--no-functional",
            "--seed", "1", "--set", "mxu.cols=32", "--set", "mxu.rows=32",
            "--workload", helpers.MLP, "--out", "OUT"])
        self.assertEqual(s.varying, ["set.mxu.cols", "set.mxu.rows", "batch", "seed"])
        self.assertEqual(first.label, "mxu.cols=32 mxu.rows=32 batch=1 seed=1")

    def test_hash_is_stable_and_ignores_order_and_false_flags(self):
        a = {"arch": "configs/arch/tpu_v4.yaml", "workload": "configs/workloads/resnet50.yaml",
             "no-functional": True, "set": {"mxu.rows": 64, "mxu.cols": 64}}
        b = {"set": {"mxu.cols": 64, "mxu.rows": 64}, "no-functional": True, "check": False,
             "workload": "configs/workloads/resnet50.yaml", "arch": "configs/arch/tpu_v4.yaml"}
        # Golden: the hash names run directories and result rows, so it must never drift.
        self.assertEqual(spec.point_hash(spec.canonical(a)), "8eea774ef1d1")
        self.assertEqual(spec.point_hash(spec.canonical(b)), "8eea774ef1d1")
        c = dict(a, set={"mxu.rows": 64, "mxu.cols": 128})
        self.assertNotEqual(spec.point_hash(c), spec.point_hash(a))

    def test_generic_options_map_to_flags(self):
        p = spec.Point(0, {"arch": "a.yaml", "workload": "w.yaml", "mode": "training",
                           "parallel": "data=4,tensor=2", "pod-set": {"dims": [2, 2, 1]},
                           "flags": ["--ideal-memory"], "trace": True})
        self.assertEqual(p.args("t", "o"), [
            "t", "run", "--arch", "a.yaml", "--ideal-memory", "--mode", "training",
            "--parallel", "data=4,tensor=2", "--pod-set", "dims=[2,2,1]", "--trace",
            "--workload", "w.yaml", "--out", "o"])
        self.assertEqual(p.columns["pod-set.dims"], "[2,2,1]")

    def bad(self, text, known=None, arch_keys=None):
        f = self.write("bad.yaml", text)
        with self.assertRaises(spec.SweepError) as cm:
            spec.load(f, known, arch_keys)
        return str(cm.exception)

    def test_bad_sweeps_name_file_line_key_expected_found(self):
        base = f"base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}}}\n"
        msg = self.bad(base + "gird: {batch: [1, 2]}\n")
        self.assertIn("bad.yaml:2: gird: expected one of name, description, base, grid", msg)
        msg = self.bad(base + "grid: {batch: 4}\n")
        self.assertIn("bad.yaml:2: grid.batch: expected a non-empty list of values, found the number 4", msg)
        msg = self.bad(base + "grid:\n  set: {mxu.rows: []}\n")
        self.assertIn("grid.set.mxu.rows: expected a non-empty list of values, found a list of 0", msg)
        msg = self.bad(base + "points: [{batch: 1}, {batch: 1}]\n")
        self.assertIn("bad.yaml:2: point 1 (points[1]): expected distinct points, found the same "
                      "settings as point 0", msg)
        msg = self.bad(base + "points:\n  - {batch: 1}\n  - {batch: 2}\n  - {batch: 1}\n")
        self.assertIn("bad.yaml:5: point 2 (points[2]): expected distinct points", msg)
        msg = self.bad(base + "---\nbase: {}\n")
        self.assertIn("bad.yaml:2: file: expected valid YAML, found a second document (---); a "
                      "sweep file holds one", msg)
        msg = self.bad(f"base: {{arch: {helpers.ARCH}, workload: {self.dir}}}\n")
        self.assertIn(f"base.workload: expected an existing file (relative paths are from the "
                      f"current directory), found '{self.dir}', a directory", msg)
        msg = self.bad(f"base: {{arch: {helpers.ARCH}}}\ngrid: {{batch: [1]}}\n")
        self.assertIn("expected arch and workload (in base, points or grid), found a point "
                      "without workload", msg)
        msg = self.bad(f"base: {{arch: nowhere.yaml, workload: {helpers.MLP}}}\n")
        self.assertIn("bad.yaml:1: base.arch: expected an existing file (relative paths are "
                      "from the current directory), found 'nowhere.yaml', which does not exist", msg)
        msg = self.bad(base + f"grid: {{workload: [{helpers.MLP}, none.yaml]}}\n")
        self.assertIn("bad.yaml:2: grid.workload[1]: expected an existing file", msg)
        msg = self.bad(base + "points:\n  - {batch: 1}\n  - {bacth: 2}\n",
                       known={"arch", "workload", "batch", "set"})
        self.assertIn("bad.yaml:4: points.1.bacth: expected a `tpusim run` option (arch, batch, "
                      "set, workload) or flags, found 'bacth'", msg)
        msg = self.bad(base + "base: {}\n")
        self.assertIn("bad.yaml:2: base: expected each key once, found it twice", msg)
        msg = self.bad(base + "points: [{set: {mxu.rows: 8}}]\ngrid:\n  set: {mxu.rows: [16]}\n")
        self.assertIn("grid: set.mxu.rows: expected each key set by one of points/grid, found "
                      "it also set by points[0]", msg)
        msg = self.bad(base + "points: [{set: 4}]\n")
        self.assertIn("bad.yaml:2: points.0.set: expected a mapping of architecture key -> "
                      "value, found the number 4", msg)
        keys = {"mxu.rows", "mxu.cols", "unified_buffer.bytes"}
        msg = self.bad(base + "grid:\n  set: {mxu.row: [1, 2]}\n", arch_keys=keys)
        self.assertIn("bad.yaml:3: grid.set.mxu.row: expected an architecture key "
                      "(docs/config.md), found 'mxu.row' (did you mean 'mxu.rows'?)", msg)
        msg = self.bad(base + "points: [{set: {unified_buffer.byte: 4}}]\n", arch_keys=keys)
        self.assertIn("points.0.set.unified_buffer.byte: expected an architecture key", msg)
        msg = self.bad(base + "grid: {set: {{a: 1}: [8]}}\n")
        self.assertIn("bad.yaml:2: file: expected valid YAML, found unhashable key", msg)
        msg = self.bad(base + "grid: [\n")
        self.assertIn("bad.yaml:3: file: expected valid YAML", msg)
        msg = self.bad(base + "seeds: [1, 1]\n")
        self.assertIn("seeds: expected distinct seeds", msg)
        msg = self.bad(base + "points: [{out: x}]\n")
        self.assertIn("expected an option sweep.py does not set itself", msg)

    def test_hostile_files_are_refused_before_they_are_expanded(self):
        base = f"base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}}}\n"
        # Aliases repeating a list nine times per level: 9^7 nodes if walked naively.
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdef", "bcdefg"))
        msg = self.bad(bomb)
        self.assertIn("file: expected at most 200000 YAML nodes (aliases counted at every use), "
                      "found more", msg)
        msg = self.bad(base + "points: [" + "[" * 2000 + "]" * 2000 + "]\n")
        self.assertIn("bad.yaml:2: file: expected mappings and lists nested at most 32 deep", msg)
        msg = self.bad(base + "description: '[[[['\npoints:\n  - " + "[" * 2000 + "]" * 2000 + "\n")
        self.assertIn("bad.yaml:4: file: expected mappings and lists nested at most 32 deep", msg)
        f = self.path("latin1.yaml")
        with open(f, "wb") as out:
            out.write(base.encode() + b"description: caf\xe9\n")
        with self.assertRaises(spec.SweepError) as cm:
            spec.load(f)
        self.assertIn("latin1.yaml:2: file: expected UTF-8 text, found the byte 0xe9", str(cm.exception))
        msg = self.bad(base + 'name: "a\\0b"\n')
        self.assertIn("name: expected a non-empty string without '/' or control characters", msg)
        msg = self.bad(base + "slurm: {partition: \"gpu\\n#SBATCH --x\"}\n")
        self.assertIn("slurm.partition: expected a scalar value on one line", msg)
        # 11 x 10^4 combinations: refused from the axis sizes, before any point is built.
        ten = "[" + ", ".join(str(i) for i in range(1, 11)) + "]"
        msg = self.bad(base + f"grid:\n  batch: [{', '.join(str(i) for i in range(1, 12))}]\n"
                       f"  seed: {ten}\n  set: {{mxu.rows: {ten}, mxu.cols: {ten}, x.y: {ten}}}\n")
        self.assertIn("grid: expected a sweep of at most 100000 points (split it into several "
                      "files), found 110000 points (11 batch x 10 seed x 10 set.mxu.rows x 10 "
                      "set.mxu.cols x 10 set.x.y)", msg)
        msg = self.bad(base + "seeds: [-1]\n")
        self.assertIn("seeds[0]: expected an integer in [0, 2^62], found the number -1", msg)
        msg = self.bad(base + "points: [{set: {1: 2}}]\n")
        self.assertIn("points.0.set: expected keys that are names (strings without '='), found "
                      "the number 1", msg)
        msg = self.bad(f"base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}, pod-set: 1}}\n"
                       "points: [{pod-set: {dims: [2]}}]\n")
        self.assertIn("bad.yaml:2: points[0]: pod-set: expected the same kind of value everywhere "
                      "the option is set", msg)

    def test_values_are_checked_against_tpusim_run_help(self):
        import sweep  # scripts/sweep.py: reads the options' types, Needs and Excludes
        known = sweep.run_options(helpers.TPUSIM)
        self.assertEqual(known["batch"]["type"], "INT")
        self.assertEqual(known["bucket-mb"]["type"], "FLOAT")
        self.assertIsNone(known["no-functional"]["type"])
        self.assertTrue(known["pod-set"]["repeatable"])
        self.assertIn("pod", known["pod-set"]["needs"])
        self.assertIn("no-functional", known["check"]["excludes"])
        base = f"base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}}}\n"
        cases = [
            ("grid: {batch: [abc, 2]}\n",
             "bad.yaml:2: grid.batch[0]: expected an integer for --batch, found the string 'abc'"),
            ("points: [{batch: 2.5}]\n", "points.0.batch: expected an integer for --batch"),
            ("points: [{batch: true}]\n", "expected an integer for --batch, found the boolean true"),
            ("points: [{batch: {a: 1}}]\n", "points.0.batch: expected a single value for --batch"),
            ("points: [{no-functional: 1}]\n",
             "points.0.no-functional: expected true or false (--no-functional is a flag)"),
            ("points: [{bucket-mb: x}]\n", "expected a number for --bucket-mb"),
            ("points: [{flags: [--bogus]}]\n",
             "points.0.flags: expected `tpusim run` options (other than --out), found '--bogus'"),
            ("grid: {flags: [[--out=x]]}\n", "grid.flags[0]: expected `tpusim run` options"),
            ("points: [{pod-set: {dims: [2, 2]}}]\n",
             "bad.yaml:2: point 0 (points[0]): expected pod with pod-set (tpusim run --pod-set needs "
             "--pod), found pod-set without pod"),
            ("points: [{check: true, no-functional: true}]\n",
             "bad.yaml:2: point 0 (points[0]): expected check and no-functional not together"),
            # The line is where the option that needs another, or the later of a pair, is set.
            ("points:\n  - {batch: 1}\n  - {batch: 2,\n     pod-set: {dims: [2, 2]}}\n",
             "bad.yaml:5: point 1 (points[1]): expected pod with pod-set"),
            ("grid:\n  batch: [1]\n  check: [true]\npoints:\n  - {}\n  - {flags: [--no-functional]}\n",
             "bad.yaml:7: point 1 (points[1]): expected check and no-functional not together"),
            ("points: [{mode: \"a\\nb\"}]\n", "points.0.mode: expected a value without control"),
            ("points: [{set: {mxu.rows: \"6\\n4\"}}]\n",
             "points.0.set.mxu.rows: expected a scalar or a list of scalars, on one line"),
            ("points: [{flags: [-h]}]\n", "points.0.flags: expected `tpusim run` long options (--name), found '-h'"),
        ]
        for text, message in cases:
            with self.subTest(text=text):
                self.assertIn(message, self.bad(base + text, known))
        ok = spec.load(self.write("ok.yaml", base + "grid: {batch: [1, 2]}\npoints:\n"
                                  f"  - {{pod: {helpers.POD}, pod-set: {{dims: [2, 2]}}, "
                                  "bucket-mb: 1e3, parallel: 'data=4'}\n  - {no-functional: true, flags: [--ideal-memory]}\n"),
                       known)
        self.assertEqual(len(ok.points), 4)

    def test_sweep_py_command_line_errors_are_one_line_before_anything_runs(self):
        s = helpers.tiny_sweep(self.path("t.yaml"))
        with open(self.path("afile"), "w", encoding="utf-8"):
            pass
        cases = [
            (["--out", self.path("afile")], "--out: expected a directory (new or existing), found the file"),
            (["--timeout", "nan"], "--timeout: expected seconds > 0, found nan"),
            (["--jobs", "x"], "<command line>: argument --jobs/-j: invalid int value: 'x'"),
            (["--results", self.path("afile", "r.csv")], "<command line>: --results: expected a table "
             f"file that can be written, found '{self.path('afile', 'r.csv')}', below "
             f"'{self.path('afile')}', which is not a directory"),
            (["--results", self.dir + "/"], "results file: expected a name ending in .csv"),
            (["--run-point", "\u00b2"], "--run-point: expected an index or the hash of one point"),
            (["--run-point", "99"], "--run-point: expected an index in [0, 3] or a point hash"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                p = run([PYTHON, SWEEP, s, "--out", self.path("o")] + extra, self.dir, check=2)
                self.assertIn(message, p.stderr)
                self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
                self.assertEqual(p.stdout, "")
                # Nothing was created: no run directory, no empty results table.
                self.assertFalse(os.path.exists(self.path("o")))
        # A default table path that cannot be made names what the user wrote: the sweep's
        # name, or --out.
        long = helpers.tiny_sweep(self.path("long.yaml"))
        with open(long, encoding="utf-8") as f:
            text = f.read().replace("name: tiny", "name: " + "n" * 300)
        with open(long, "w", encoding="utf-8") as f:
            f.write(text)
        p = run([PYTHON, SWEEP, long], self.dir, check=2)
        self.assertIn(f"{long}: name (the results table runs/sweeps/NAME/results.csv): expected a "
                      "table file that can be written", p.stderr)
        self.assertIn("file name too long", p.stderr)
        # The directories made on the way (runs/sweeps/) are removed again.
        self.assertFalse(os.path.exists(self.path("runs")))
        p = run([PYTHON, SWEEP, s, "--out", self.path("afile", "o")], self.dir, check=2)
        self.assertIn(f"<command line>: --out: expected a directory (new or existing), found "
                      f"'{self.path('afile', 'o')}', below '{self.path('afile')}', which is not a "
                      "directory", p.stderr)

    def test_sweep_py_exits_2_on_bad_sweep(self):
        f = self.write("bad.yaml", f"base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}}}\n"
                                   "grid: {bacth: [1, 2]}\n")
        p = run([PYTHON, SWEEP, f, "--out", self.path("o")], self.dir, check=2)
        self.assertIn("sweep.py: error: ", p.stderr)
        self.assertIn("bad.yaml:2: grid.bacth: expected a `tpusim run` option", p.stderr)
        self.assertFalse(os.path.exists(self.path("o")))
        f = self.write("bad2.yaml", f"base: {{arch: {helpers.ARCH}, workload: {helpers.MLP}}}\n"
                                    "grid:\n  set: {mxu.colls: [8]}\n")
        p = run([PYTHON, SWEEP, f], self.dir, check=2)
        self.assertIn("bad2.yaml:3: grid.set.mxu.colls: expected an architecture key "
                      "(docs/config.md), found 'mxu.colls' (did you mean 'mxu.cols'?)", p.stderr)
        p = run([PYTHON, SWEEP, f, "--tpusim", self.path("none")], self.dir, check=2)
        self.assertIn("--tpusim: expected an executable tpusim", p.stderr)
        # An executable that does not describe its options cannot have the values checked.
        mute = self.path("mute-tpusim")
        with open(mute, "w", encoding="utf-8") as out:
            out.write("#!/bin/sh\nexit 0\n")
        os.chmod(mute, 0o755)
        p = run([PYTHON, SWEEP, helpers.tiny_sweep(self.path("t.yaml")), "--tpusim", mute,
                 "--out", self.path("o")], self.dir, check=2)
        self.assertIn(f"<command line>: --tpusim: expected a tpusim whose `run --help` lists its "
                      f"options, found {mute}, whose does not", p.stderr)
        self.assertFalse(os.path.exists(self.path("o")))
        # One that prints bytes that are not UTF-8, or endless output, is refused the same way
        # (no traceback, no unbounded read).
        for name, body in (("latin1-tpusim", "printf '\\377\\376 --batch INT\\n'"),
                           ("endless-tpusim", "exec yes '  --batch INT'")):
            fake = self.path(name)
            with open(fake, "w", encoding="utf-8") as out:
                out.write(f"#!/bin/sh\n[ \"$1\" = config ] && exit 0\n{body}\n")
            os.chmod(fake, 0o755)
            p = run([PYTHON, SWEEP, helpers.tiny_sweep(self.path("t.yaml")), "--tpusim", fake,
                     "--out", self.path("o")], self.dir, check=2)
            self.assertNotIn("Traceback", p.stderr)
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            self.assertIn(f"<command line>: --tpusim: expected a tpusim whose ", p.stderr)
            self.assertFalse(os.path.exists(self.path("o")))
        p = run([PYTHON, SWEEP, helpers.tiny_sweep(self.path("t.yaml")), "--results",
                 self.path("r.txt")], self.dir, check=2)
        self.assertIn("r.txt: results file: expected a name ending in .csv", p.stderr)


class LocalRun(TempDir):
    """SweepRun: a local pool of two, one row per point, the figures from report.json."""

    def test_jobs_2_writes_one_row_per_point(self):
        s = helpers.tiny_sweep(self.path("tiny.yaml"))
        p = run([PYTHON, SWEEP, s, "--jobs", "2", "--out", self.path("out")], self.dir, check=0)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("[")]
        self.assertEqual(len(lines), 4, p.stdout)
        self.assertIn("4 to run, 2 at a time", p.stdout)
        self.assertTrue(all(" ok " in ln and " cycles " in ln and "TOPS" in ln for ln in lines))
        self.assertIn("| ETA ", lines[0])
        self.assertIn("| done in ", lines[-1])
        self.assertRegex(lines[-1], r"^\[4/4\] ok ")
        rows = self.rows(self.path("out", "results.csv"))
        self.assertEqual(len(rows), 4)
        sweep = spec.load(s)
        self.assertEqual({r["hash"] for r in rows}, {pt.hash for pt in sweep.points})
        for r in rows:
            rd = self.path("out", r["run_dir"])
            self.assertEqual(os.path.basename(rd), r["hash"])
            with open(os.path.join(rd, "report.json")) as f:
                rep = json.load(f)
            self.assertEqual(r["status"], "ok")
            self.assertEqual(r["total_cycles"], rep["total_cycles"])
            self.assertEqual(r["macs"], rep["macs"])
            self.assertAlmostEqual(r["utilization"], rep["utilization"], places=12)
            self.assertEqual(r["stall.weight_stall"], rep["stall_breakdown"]["weight_stall"])
            self.assertEqual(r["memory.hbm_read_bytes"], rep["memory"]["hbm_read_bytes"])
            self.assertEqual(r["arch.peak_ops_per_cycle"], rep["arch"]["peak_ops_per_cycle"])
            self.assertEqual(r["config.mxu.rows"], r["set.mxu.rows"])
            self.assertEqual(json.loads(r["point"]), spec.canonical(json.loads(r["point"])))
        # The header: lead columns, then the point's settings, then figures.
        with open(self.path("out", "results.csv")) as f:
            header = next(csv.reader(f))
        self.assertEqual(header[:8], ["hash", "index", "status", "exit_code", "label", "arch",
                                      "no-functional", "set.mxu.rows"])
        self.assertEqual(header[-4:], ["error", "run_dir", "command", "point"])


class Resume(TempDir):
    """SweepResume: rows already in the table are skipped; an interrupted sweep resumes."""

    def test_prepopulated_points_are_skipped(self):
        s = helpers.tiny_sweep(self.path("tiny.yaml"), rows=(64, 128, 256))
        out = self.path("out")
        for i in ("0", "3"):
            p = run([PYTHON, SWEEP, s, "--out", out, "--run-point", i], self.dir, check=0)
            self.assertRegex(p.stdout, rf"^\[point {i} of 6\] ok ")
        before = {r["hash"]: r for r in self.rows(self.path("out", "results.csv"))}
        self.assertEqual(len(before), 2)
        p = run([PYTHON, SWEEP, s, "--out", out, "-j", "2"], self.dir, check=0)
        self.assertIn("6 points, 2 already in", p.stdout)
        ran = [ln.split()[3] for ln in p.stdout.splitlines() if ln.startswith("[")]
        self.assertEqual(len(ran), 4)
        self.assertFalse(set(ran) & set(before))
        self.assertEqual(ran and p.stdout.splitlines()[1][:5], "[3/6]")
        rows = self.rows(self.path("out", "results.csv"))
        self.assertEqual(len(rows), 6)
        self.assertEqual(len({r["hash"] for r in rows}), 6)
        p = run([PYTHON, SWEEP, s, "--out", out], self.dir, check=0)
        self.assertIn("0 to run", p.stdout)
        p = run([PYTHON, SWEEP, s, "--out", out, "--run-point", "0"], self.dir, check=0)
        self.assertIn("already in", p.stdout)

    def test_killed_sweep_resumes_where_it_stopped(self):
        slow = helpers.write_wrapper(self.path("slow-tpusim"), "sleep 0.4\n")
        s = helpers.tiny_sweep(self.path("tiny.yaml"), rows=(64, 128, 256))
        results = self.path("out", "results.csv")
        env = dict(os.environ, TPUSIM=slow, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.Popen([PYTHON, SWEEP, s, "--out", self.path("out"), "-j", "1"],
                                cwd=self.dir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(results) and len(self.rows(results)) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 130, out + err)
        self.assertIn("the same command resumes", err)
        first = self.rows(results)
        self.assertGreaterEqual(len(first), 2)
        self.assertLess(len(first), 6)
        self.assertTrue(all(r["status"] == "ok" for r in first), first)
        p = run([PYTHON, SWEEP, s, "--out", self.path("out"), "-j", "2"], self.dir, check=0)
        self.assertIn(f"{len(first)} already in", p.stdout)
        self.assertEqual(len([ln for ln in p.stdout.splitlines() if ln.startswith("[")]),
                         6 - len(first))
        rows = self.rows(results)
        self.assertEqual(len(rows), 6)
        self.assertEqual(len({r["hash"] for r in rows}), 6)
        self.assertTrue(all(r["status"] == "ok" for r in rows))


class Failures(TempDir):
    """SweepFailures: bad input, crashes and timeouts are recorded; the others complete."""

    def test_failed_points_are_recorded_and_others_complete(self):
        tpusim = helpers.write_wrapper(self.path("fake-tpusim"), """\
            case "$*" in
              *mxu.rows=48*) kill -SEGV $$ ;;
              *mxu.rows=96*) sleep 30 ;;
            esac
            """)
        s = helpers.tiny_sweep(self.path("tiny.yaml"), rows=(0, 48, 64, 96))
        p = run([PYTHON, SWEEP, s, "--out", self.path("out"), "-j", "2", "--timeout", "5",
                 "--tpusim", tpusim], self.dir, check=1)
        self.assertIn("2 ok, 6 failed of 8 run", p.stdout)
        rows = {(r["set.mxu.rows"], os.path.basename(r["workload"])): r
                for r in self.rows(self.path("out", "results.csv"))}
        self.assertEqual(len(rows), 8)
        bad = rows[(0, "gemm_mlp.yaml")]
        self.assertEqual((bad["status"], bad["exit_code"]), ("bad_input", 2))
        self.assertEqual(bad["error"], "tpusim: error: <command line>: --set mxu.rows: expected an "
                                       "integer in [1, 4096] PEs, found '0'")
        self.assertIsNone(bad["total_cycles"])
        crash = rows[(48, "bert_base_128.yaml")]
        self.assertEqual((crash["status"], crash["exit_code"], crash["error"]),
                         ("crashed", -11, "killed by SIGSEGV"))
        slow = rows[(96, "gemm_mlp.yaml")]
        self.assertEqual((slow["status"], slow["error"]), ("timeout", "no result after 5.0 s"))
        for wl in ("gemm_mlp.yaml", "bert_base_128.yaml"):
            self.assertEqual(rows[(64, wl)]["status"], "ok")
            self.assertGreater(rows[(64, wl)]["total_cycles"], 0)
        self.assertTrue(any(ln.startswith("[") and "bad_input" in ln and "mxu.rows: expected"
                            in ln for ln in p.stdout.splitlines()))
        # Failed points count as done unless asked to retry them; a retry replaces the row.
        p = run([PYTHON, SWEEP, s, "--out", self.path("out"), "--tpusim", helpers.TPUSIM,
                 "--retry-failed", "--timeout", "20"], self.dir, check=1)
        self.assertIn("6 to run", p.stdout)
        rows = {(r["set.mxu.rows"], os.path.basename(r["workload"])): r
                for r in self.rows(self.path("out", "results.csv"))}
        self.assertEqual(len(rows), 8)
        self.assertEqual(rows[(48, "bert_base_128.yaml")]["status"], "ok")
        self.assertEqual(rows[(96, "gemm_mlp.yaml")]["status"], "ok")
        self.assertEqual(rows[(0, "gemm_mlp.yaml")]["status"], "bad_input")


class Tables(TempDir):
    """SweepTables: CSV and SQLite hold the same rows; both resume; concurrent writers."""

    def test_damaged_tables_stop_the_sweep_with_one_line(self):
        s = helpers.tiny_sweep(self.path("tiny.yaml"))
        cases = [
            (b"a,b\n1,2\n", "r.csv:1: results table: expected a header naming each column once, "
             "hash among them, found no hash column"),
            (b"hash,hash\nx,y\n", "found the column 'hash' twice"),
            (b"hash,status\nab,ok,extra\n", "r.csv:2: results table: expected 2 cells (one per "
             "header column), found 3"),
            (b"hash,status\n,ok\n", "r.csv:2: results table: expected a point hash in the hash "
             "column, found none"),
            (b'hash,status\n"ab,ok\n', "r.csv: results table: expected CSV, found unexpected end"),
            ("hash,status\n".encode("utf-16"), "r.csv: results table: expected UTF-8 CSV text, "
             "found the byte 0xff at offset 0"),
        ]
        for data, message in cases:
            with self.subTest(data=data):
                with open(self.path("r.csv"), "wb") as f:
                    f.write(data)
                p = run([PYTHON, SWEEP, s, "--out", self.path("o"), "--results", self.path("r.csv")],
                        self.dir, check=2)
                self.assertIn(message, p.stderr)
                self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
                self.assertFalse(os.path.exists(self.path("o", "points")))
        # A SQLite "results" that is a view, or rows without a hash, stop the sweep the same way.
        import sqlite3 as sq
        for sql, message in [
                ("CREATE TABLE t(hash, b); CREATE VIEW results AS SELECT * FROM t",
                 "expected 'results' to be a table, found a view"),
                ("CREATE TABLE results(hash, status); INSERT INTO results VALUES (NULL, 'ok')",
                 "expected a point hash (text) in every row, found row 1 without one")]:
            with self.subTest(sql=sql):
                db_path = self.path(f"r{len(sql)}.sqlite")
                db = sq.connect(db_path)
                db.executescript(sql)
                db.close()
                p = run([PYTHON, SWEEP, s, "--out", self.path("o"), "--results", db_path],
                        self.dir, check=2)
                self.assertIn(message, p.stderr)
                self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        # A byte-order mark before the header is UTF-8 still.
        with open(self.path("bom.csv"), "wb") as f:
            f.write(b"\xef\xbb\xbfhash,status\nab,ok\n")
        self.assertEqual(table.open_table(self.path("bom.csv")).hashes(), {"ab": "ok"})
        # Old Mac line ends are still CSV: the table reads back.
        with open(self.path("cr.csv"), "wb") as f:
            f.write(b"hash,status\rab,ok\r")
        self.assertEqual(table.open_table(self.path("cr.csv")).hashes(), {"ab": "ok"})

    def test_csv_and_sqlite_hold_the_same_rows(self):
        s = helpers.tiny_sweep(self.path("tiny.yaml"), rows=(0, 64))
        for name in ("r.csv", "r.sqlite"):
            run([PYTHON, SWEEP, s, "--out", self.path("out"), "--results", self.path(name),
                 "-j", "2"], self.dir, check=1)
        by_csv = {r["hash"]: r for r in self.rows(self.path("r.csv"))}
        by_db = {r["hash"]: r for r in self.rows(self.path("r.sqlite"))}
        self.assertEqual(set(by_csv), set(by_db))
        self.assertEqual(len(by_db), 4)
        for h, r in by_csv.items():
            for k, v in r.items():
                if isinstance(v, float):
                    self.assertAlmostEqual(v, by_db[h][k], places=9, msg=k)
                else:
                    self.assertEqual(v, by_db[h][k], msg=k)
        db = sqlite3.connect(self.path("r.sqlite"))
        self.assertEqual(db.execute("SELECT count(*) FROM results WHERE status='ok'").fetchone(), (2,))
        db.close()
        p = run([PYTHON, SWEEP, s, "--out", self.path("out"), "--results", self.path("r.sqlite")],
                self.dir, check=0)
        self.assertIn("4 already in", p.stdout)

    def test_concurrent_writers_lose_no_row(self):
        for name in ("c.csv", "c.sqlite"):
            t = table.open_table(self.path(name))
            procs = [subprocess.Popen([PYTHON, "-c", textwrap.dedent(f"""\
                import sys; sys.path.insert(0, {helpers.SCRIPTS!r})
                from tpusweep import table
                t = table.open_table({self.path(name)!r})
                for i in range(25):
                    t.put({{"hash": "w{w}-%d" % i, "status": "ok", "w{w}": i}})
                """)]) for w in range(4)]
            for p in procs:
                self.assertEqual(p.wait(timeout=60), 0)
            rows = t.rows()
            self.assertEqual(len(rows), 100, name)
            self.assertEqual(len({r["hash"] for r in rows}), 100)


class Slurm(TempDir):
    """SweepSlurm: the job-array script is valid bash and its task body runs points."""

    def test_array_script_runs_its_tasks_locally(self):
        s = helpers.tiny_sweep(self.path("tiny.yaml"), extra="""\
            slurm: {partition: short, time: "00:05:00"}
            """)
        out = self.path("out")
        p = run([PYTHON, SWEEP, s, "--out", out, "--slurm", "--jobs", "3"], self.dir, check=0)
        script = os.path.join(out, "sweep.slurm")
        self.assertIn(f"sbatch {os.path.relpath(script, self.dir)}", p.stdout.replace(out, "out"))
        with open(script) as f:
            text = f.read()
        self.assertIn("#SBATCH --array=0-3%3\n", text)
        self.assertIn("#SBATCH --partition=short\n", text)
        self.assertIn("#SBATCH --time=00:05:00\n", text)
        self.assertIn(f"#SBATCH --output={out}/slurm/%A_%a.out\n", text)
        self.assertTrue(os.path.isdir(os.path.join(out, "slurm")))
        run(["bash", "-n", script], self.dir, check=0)
        p = run(["bash", script], self.dir, env={"SLURM_ARRAY_TASK_ID": ""}, check=1)
        self.assertIn("submit this script with sbatch", p.stderr)
        sweep = spec.load(s)
        for task in ("1", "2"):
            p = run(["bash", script], "/", env={"SLURM_ARRAY_TASK_ID": task}, check=0)
            self.assertIn(f"[point {task} of 4] ok", p.stdout)
        rows = self.rows(os.path.join(out, "results.csv"))
        self.assertEqual(sorted(r["hash"] for r in rows),
                         sorted([sweep.points[1].hash, sweep.points[2].hash]))
        p = run(["bash", script], "/", env={"SLURM_ARRAY_TASK_ID": "1"}, check=0)
        self.assertIn("already in", p.stdout)


@unittest.skipUnless(shutil.which("parallel"), "GNU parallel is not installed (Debian package "
                     "`parallel`, in scripts/install-deps.sh): GNU parallel test skipped")
class GnuParallel(TempDir):
    """SweepGnuParallel: the emitted commands run under GNU parallel on localhost."""

    def test_emitted_commands_run_under_parallel(self):
        s = helpers.tiny_sweep(self.path("tiny.yaml"), rows=(0, 64, 128))
        out = self.path("out")
        run([PYTHON, SWEEP, s, "--out", out, "--run-point", "0"], self.dir, check=1)
        p = run([PYTHON, SWEEP, s, "--out", out, "--emit-commands"], self.dir, check=0)
        cmds = p.stdout.splitlines()
        self.assertEqual(len(cmds), 5)
        self.assertTrue(all(c.startswith(f"cd {self.dir} && ") and "--run-point " in c for c in cmds))
        with open(self.path("hosts"), "w") as f:
            f.write("2/:\n")  # ':' is the local machine, without ssh; 2 jobs at once
        with open(self.path("cmds"), "w") as f:
            f.write(p.stdout)
        p = run(["parallel", "--will-cite", "--sshloginfile", self.path("hosts"),
                 "--joblog", self.path("joblog"), "--arg-file", self.path("cmds")], "/",
                check=1)  # exit code 1: one of the points (mxu.rows=0) fails
        with open(self.path("joblog")) as f:
            self.assertEqual(len(f.read().splitlines()), 1 + 5)
        rows = self.rows(os.path.join(out, "results.csv"))
        self.assertEqual(len(rows), 6)
        self.assertEqual(sorted(r["status"] for r in rows), ["bad_input"] * 2 + ["ok"] * 4)
        p = run([PYTHON, SWEEP, s, "--out", out, "--emit-commands"], self.dir, check=0)
        self.assertEqual(p.stdout, "")


class ExampleSweeps(TempDir):
    """SweepExamples: configs/sweeps/ expand as documented; the single-chip ones run."""

    def test_examples_expand(self):
        sweeps = os.path.join(helpers.REPO, "configs", "sweeps")
        cwd = os.getcwd()
        os.chdir(helpers.REPO)
        self.addCleanup(os.chdir, cwd)
        counts = {name: len(spec.load(os.path.join(sweeps, name)).points)
                  for name in sorted(os.listdir(sweeps))}
        self.assertEqual(counts, {"array_size.yaml": 8, "pod_size.yaml": 7,
                                  "ub_bandwidth.yaml": 45})

    def test_array_size_and_ub_bandwidth_run_end_to_end(self):
        for name, n in (("array_size", 8), ("ub_bandwidth", 45)):
            out = self.path(name)
            p = run([PYTHON, SWEEP, f"configs/sweeps/{name}.yaml", "--out", out, "-j", "2"],
                    helpers.REPO, check=0)
            self.assertIn(f"{n} ok, 0 failed of {n} run", p.stdout)
            self.assertEqual(len(self.rows(os.path.join(out, "results.csv"))), n)


if __name__ == "__main__":
    unittest.main()

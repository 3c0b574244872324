"""Tests of scripts/plot.py: every figure kind, PNG and SVG, from the committed fixture tables
(tests/scripts/fixture, written by make_fixture.py) as CSV and as SQLite."""

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import unittest

import helpers
import plot
from helpers import PLOT, PYTHON, run
from tpusweep import table

FIXTURE = os.path.join(helpers.HERE, "fixture")


def magic(path):
    with open(path, "rb") as f:
        return f.read(8)


class PlotBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tpusim-plot-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def plot(self, results, *args, check=0, out=None):
        """Runs plot.py's main in this process (one matplotlib import for every figure)."""
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = plot.main([results, "--out", out or self.dir] + list(args))
            except SystemExit as e:
                code = e.code
        result = subprocess.CompletedProcess(["plot.py", results] + list(args), code,
                                             stdout.getvalue(), stderr.getvalue())
        if code != check:
            raise AssertionError(f"plot.py {results} {args} exited {code}, expected {check}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def assert_figure(self, name, fmt):
        path = os.path.join(self.dir, f"{name}.{fmt}")
        self.assertTrue(os.path.exists(path), path)
        self.assertGreater(os.path.getsize(path), 5000, path)
        if fmt == "png":
            self.assertEqual(magic(path), b"\x89PNG\r\n\x1a\n")
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            self.assertTrue(text.startswith("<?xml"), path)
            self.assertIn("<svg", text)
            self.assertNotIn("<dc:date>", text)  # no wall-clock time in a figure

    def every_kind(self, fmt):
        p = self.plot(os.path.join(FIXTURE, "array_size.csv"), "--format", fmt,
                      "--point", "435ab9015a9e")
        for name in ("utilization", "cycles", "roofline", "stalls", "stalls_435ab9015a9e"):
            self.assert_figure(name, fmt)
            self.assertIn(f"wrote {os.path.join(self.dir, name)}.{fmt}", p.stdout)
        self.assertIn("scaling: skipped: the table has no pod.chips column", p.stdout)
        p = self.plot(os.path.join(FIXTURE, "pod_size.csv"), "--kind", "scaling",
                      "--format", fmt)
        self.assert_figure("scaling", fmt)


class PlotKinds(PlotBase):
    """Every kind from the fixture, in both formats."""

    def test_every_kind_png(self):
        self.every_kind("png")

    def test_every_kind_svg(self):
        self.every_kind("svg")
        again = os.path.join(self.dir, "again")
        self.plot(os.path.join(FIXTURE, "array_size.csv"), "--format", "svg", "--kind",
                  "roofline", out=again)
        with open(os.path.join(self.dir, "roofline.svg"), "rb") as a, \
                open(os.path.join(again, "roofline.svg"), "rb") as b:
            self.assertEqual(a.read(), b.read(), "the same table must give the same SVG")


class PlotTables(PlotBase):
    """The fixture is reproducible, SQLite plots like CSV, missing data is a clear error."""

    def test_fixture_is_what_make_fixture_writes(self):
        run([PYTHON, os.path.join(helpers.HERE, "make_fixture.py"), "--check"], self.dir, check=0)

    def test_sqlite_table_gives_the_same_figures(self):
        db = os.path.join(self.dir, "fixture.sqlite")
        for r in table.CsvTable(os.path.join(FIXTURE, "array_size.csv")).rows():
            r["run_dir"] = os.path.join(FIXTURE, r["run_dir"]) if r.get("run_dir") else None
            table.SqliteTable(db).put(r)
        p = self.plot(db, "--kind", "roofline", "--layers", "on")
        self.assert_figure("roofline", "png")
        self.assertNotIn("skipped", p.stdout)
        p = self.plot(db, "--kind", "utilization", "--x", "config.mxu.rows",
                      "--where", "workload.name=resnet50")
        self.assert_figure("utilization", "png")

    def test_missing_data_is_an_error_naming_the_kind(self):
        p = self.plot(os.path.join(FIXTURE, "array_size.csv"), "--kind", "scaling", check=2)
        self.assertIn("array_size.csv: scaling: the table has no pod.chips column", p.stderr)
        p = self.plot(os.path.join(FIXTURE, "array_size.csv"), "--kind", "cycles", "--x", "nope",
                      check=2)
        self.assertIn("--x: expected a setting (arch, no-functional, set.mxu.cols, set.mxu.rows, "
                      "workload) or a metric column of the table, found 'nope'", p.stderr)
        # The command itself: Debian's interpreter, exit code and message on stderr.
        p = run([PYTHON, PLOT, os.path.join(self.dir, "none.csv")], self.dir, check=2)
        self.assertIn("plot.py: error: ", p.stderr)
        self.assertIn("none.csv: results table: expected an existing file", p.stderr)


class PlotFromSweep(unittest.TestCase):
    """A real tiny sweep plots every single-chip kind (the writer and reader agree)."""

    def test_sweep_output_plots(self):
        d = tempfile.mkdtemp(prefix="tpusim-plot-sweep-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        s = helpers.tiny_sweep(os.path.join(d, "tiny.yaml"))
        res = os.path.join(d, "r.sqlite")
        run([PYTHON, helpers.SWEEP, s, "--out", os.path.join(d, "out"), "--results", res, "-j", "2"],
            d, check=0)
        p = run([PYTHON, PLOT, res], d, check=0)
        for name in ("utilization", "cycles", "roofline", "stalls"):
            self.assertTrue(os.path.exists(os.path.join(d, "plots", f"{name}.png")), p.stdout)
        self.assertEqual(len([f for f in os.listdir(os.path.join(d, "plots"))
                              if f.startswith("stalls_")]), 4)


if __name__ == "__main__":
    unittest.main()

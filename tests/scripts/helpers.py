"""Shared pieces of the sweep and plot tests: paths, the tpusim under test, tiny sweeps."""

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "scripts")
SWEEP = os.path.join(SCRIPTS, "sweep.py")
PLOT = os.path.join(SCRIPTS, "plot.py")
PYTHON = "/usr/bin/python3"
TPUSIM = os.environ.get("TPUSIM") or os.path.join(REPO, "build", "tpusim")
sys.path.insert(0, SCRIPTS)

ARCH = os.path.join(REPO, "configs", "arch", "tpu_v4.yaml")
MLP = os.path.join(REPO, "configs", "workloads", "gemm_mlp.yaml")
BERT = os.path.join(REPO, "configs", "workloads", "bert_base_128.yaml")
POD = os.path.join(REPO, "configs", "pod", "v5e_16x16.yaml")


def tiny_sweep(path, rows=(64, 128), extra=""):
    """Writes a sweep of len(rows) x 2 timing-only points (a few hundredths of a second each)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(f"""\
            name: tiny
            base:
              arch: {ARCH}
              no-functional: true
            grid:
              set:
                mxu.rows: {list(rows)}
              workload: [{MLP}, {BERT}]
            """) + textwrap.dedent(extra))
    return path


def run(args, cwd, env=None, check=None, timeout=120):
    """Runs a command; returns the CompletedProcess (stdout and stderr as text)."""
    e = dict(os.environ, TPUSIM=TPUSIM, PYTHONDONTWRITEBYTECODE="1")
    e.update(env or {})
    p = subprocess.run(args, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args} exited {p.returncode}, expected {check}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def write_wrapper(path, body):
    """A fake tpusim: a shell script that runs `body` and then the real tpusim."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("#!/bin/bash\n" + textwrap.dedent(body) + f'\nexec {TPUSIM} "$@"\n')
    os.chmod(path, 0o755)
    return path

#!/usr/bin/python3
"""Validation against published silicon (issue 8; docs/validation.md): runs the TPU v1, pod and
Edge TPU comparisons on the simulator, then rewrites every generated block of
docs/validation.md (between `<!-- BEGIN name -->` and `<!-- END name -->`), the figures in
docs/figures/ and docs/validation.json (the simulated figures; tests/scripts/test_validation.py
holds the TPU v1 ones to a band, tests/scripts/test_pods.py the pod ones). The prose around
the blocks is written by hand.

Usage: scripts/validate.py [--tpusim build/tpusim] [--out runs/validation] [--check]
  --check: write nothing; exit 1 when the document's blocks differ from a fresh run.
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tpuvalidate import edgetpu, pods, tpu_v1  # noqa: E402

REPO = os.path.dirname(HERE)
DOC = os.path.join(REPO, "docs", "validation.md")
JSON = os.path.join(REPO, "docs", "validation.json")
FIGURES = os.path.join(REPO, "docs", "figures")
BLOCK = re.compile(r"(<!-- BEGIN (?P<name>[\w.]+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.S)


def blocks_of(text):
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def fill(text, blocks):
    """The document with each named block's body replaced; every block must be present."""
    missing = set(blocks) - set(blocks_of(text))
    if missing:
        raise SystemExit(f"validate.py: {DOC} has no block named {', '.join(sorted(missing))}")
    return BLOCK.sub(lambda m: m.group(1) + (blocks[m.group("name")].rstrip("\n") + "\n"
                                             if m.group("name") in blocks else m.group("body"))
                     + m.group(4), text)


def figures(results, out_dir):
    """The TPU v1 roofline with scripts/plot.py (SVG, reproducible byte for byte)."""
    os.makedirs(out_dir, exist_ok=True)
    cmd = [sys.executable, os.path.join(HERE, "plot.py"), results["tpu_v1"]["csv"]["roofline"],
           "--kind", "roofline", "--intensity", "macs", "--layers", "off", "--series", "workload",
           "--format", "svg", "--out", out_dir]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    os.replace(os.path.join(out_dir, "roofline.svg"), os.path.join(out_dir, "tpu_v1_roofline.svg"))


def summary(results):
    """The figures the band test compares: no paths, nothing machine-dependent."""
    t = results["tpu_v1"]
    return {
        "tpu_v1": {
            "apps": {a: v["simulated"] for a, v in t["apps"].items()},
            "gddr5_speedup": {a: round(v["speedup"], 4) for a, v in t["gddr5"].items()},
            "gddr5_geomean": round(t["gddr5_geomean"], 4),
            "ridge_model": round(t["ridge_model"], 2),
            "ridge_measured": round(t["ridge_measured"], 2),
        },
        "pods": {p["key"]: {"all_reduce": p["all_reduce"], "bisection": p["bisection"]}
                 for p in results["pods"]["pods"]},
        "edgetpu": {r["model"]: {k: r["runs"][k]["seconds"] for k in r["runs"]}
                    for r in results["edgetpu"]["models"]},
    }


def generate(tpusim, out):
    results = {
        "tpu_v1": tpu_v1.run(tpusim, os.path.join(out, "tpu_v1")),
        "pods": pods.run(tpusim, os.path.join(out, "pods")),
        "edgetpu": edgetpu.run(tpusim, os.path.join(out, "edgetpu")),
    }
    blocks = dict(tpu_v1.markdown(results["tpu_v1"]))
    blocks["pods"] = pods.markdown(results["pods"])
    blocks["edgetpu.results"] = edgetpu.markdown(results["edgetpu"])
    return results, blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tpusim", default=os.path.join(REPO, "build", "tpusim"))
    ap.add_argument("--out", default=os.path.join(REPO, "runs", "validation"),
                    help="run directories and tables (default runs/validation)")
    ap.add_argument("--check", action="store_true", help="compare the document with a fresh run; write nothing")
    args = ap.parse_args()
    if not os.access(args.tpusim, os.X_OK):
        print(f"validate.py: error: --tpusim: expected an executable tpusim, found '{args.tpusim}'", file=sys.stderr)
        return 2
    results, blocks = generate(args.tpusim, args.out)
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    new = fill(text, blocks)
    if args.check:
        if new != text:
            print(f"validate.py: {DOC} differs from a fresh run (run scripts/validate.py)", file=sys.stderr)
            return 1
        print("validate.py: docs/validation.md matches a fresh run")
        return 0
    with open(DOC, "w", encoding="utf-8") as f:
        f.write(new)
    with open(JSON, "w", encoding="utf-8") as f:
        json.dump(summary(results), f, indent=1, sort_keys=True)
        f.write("\n")
    figures(results, FIGURES)
    print(f"validate.py: wrote {os.path.relpath(DOC, REPO)}, {os.path.relpath(JSON, REPO)} and "
          f"{os.path.relpath(FIGURES, REPO)}/tpu_v1_roofline.svg ({tpu_v1.markdown(results['tpu_v1'])['tpu_v1.summary']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Writes the plot tests' fixture tables (tests/scripts/fixture/) from a small analytic model
and a fixed seed: an array-size sweep with per-layer rows (layers.csv per point) and a pod
scaling sweep with the pod.* columns `tpusim run --pod` is to add. The figures are
plausible, not simulated: they exercise scripts/plot.py, they are not results.

  tests/scripts/make_fixture.py           rewrite the fixture
  tests/scripts/make_fixture.py --check   exit 1 if the committed fixture differs
"""

import argparse
import filecmp
import json
import math
import os
import random
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))

from tpusweep import runner, spec, table  # noqa: E402

CLOCK_HZ = 1.05e9
MXUS = 8
HBM_GBPS = 1200.0
# Two toy workloads of three matrix layers each: (name, op, M rows, K, N).
WORKLOADS = {
    "configs/workloads/resnet50.yaml": [("conv_a", "conv2d", 3136, 576, 64),
                                        ("conv_b", "conv2d", 784, 1152, 128),
                                        ("fc", "fully_connected", 1, 2048, 1000)],
    "configs/workloads/bert_base_128.yaml": [("q", "fully_connected", 128, 768, 768),
                                             ("scores", "matmul", 128, 64, 128),
                                             ("ffn1", "fully_connected", 128, 768, 3072)],
}
LAYER_COLUMNS = ["name", "op", "shape", "macs", "array_macs", "cycles", "compute_cycles",
                 "utilization", "mapping_efficiency", "weight_stall", "weight_shift",
                 "input_stall", "raw_stall", "fill_drain", "hbm_bytes", "bound"]


def layer_row(rng, n, name, op, m, k, nn):
    tiles = math.ceil(k / n) * math.ceil(nn / n)
    compute = math.ceil(tiles * (m + n) / MXUS)
    hbm = 2 * (k * nn + m * k + m * nn)
    mem = math.ceil(hbm / (HBM_GBPS * 1e9 / CLOCK_HZ))
    cycles = int(max(compute, mem) * rng.uniform(1.05, 1.25))
    macs = m * k * nn
    slots = tiles * n * n * m
    stalls = {"weight_stall": int(max(0, mem - compute) * MXUS * rng.uniform(0.5, 0.9)),
              "weight_shift": int(tiles * n / 8 * rng.uniform(0.1, 0.5)),
              "input_stall": int(cycles * rng.uniform(0.0, 0.3)),
              "raw_stall": int(cycles * rng.uniform(0.0, 0.05)),
              "fill_drain": int(tiles * n * rng.uniform(0.0, 0.1))}
    row = {"name": name, "op": op, "shape": f"{m}x{nn}", "macs": macs, "array_macs": macs,
           "cycles": cycles, "compute_cycles": compute,
           "utilization": round(macs / (cycles * n * n * MXUS), 6),
           "mapping_efficiency": round(macs / slots, 6), "hbm_bytes": hbm,
           "bound": "compute" if compute >= mem else "memory"}
    row.update(stalls)
    return row


def array_points(rng, out):
    rows = []
    for workload, layers in WORKLOADS.items():
        for n in (32, 64, 128, 256):
            opts = spec.canonical({"arch": "configs/arch/tpu_v4.yaml", "workload": workload,
                                   "no-functional": True, "set": {"mxu.rows": n, "mxu.cols": n}})
            p = spec.Point(len(rows), opts)
            p.label = f"workload={os.path.basename(workload)[:-5]} mxu.rows={n} mxu.cols={n}"
            lrows = [layer_row(rng, n, *layer) for layer in layers]
            run_dir = os.path.join(out, "points", p.hash)
            os.makedirs(run_dir)
            with open(os.path.join(run_dir, "layers.csv"), "w", encoding="utf-8") as f:
                f.write(",".join(LAYER_COLUMNS) + "\n")
                for r in lrows:
                    f.write(",".join(str(r[c]) for c in LAYER_COLUMNS) + "\n")
            cycles = sum(r["cycles"] for r in lrows)
            macs = sum(r["macs"] for r in lrows)
            peak = n * n * MXUS
            active = sum(r["compute_cycles"] for r in lrows) / cycles
            useful = macs / (cycles * peak)
            wstall = min(1 - active, sum(r["weight_stall"] for r in lrows) / (cycles * MXUS))
            wshift = min(1 - active - wstall, sum(r["weight_shift"] for r in lrows) / (cycles * MXUS))
            row = {"hash": p.hash, "index": p.index, "status": "ok", "exit_code": 0,
                   "label": p.label, **p.columns,
                   "total_cycles": cycles, "seconds": cycles / CLOCK_HZ, "utilization": useful,
                   "achieved_tops": 2 * macs / (cycles / CLOCK_HZ) / 1e12, "macs": macs,
                   "stall.array_active": active, "stall.useful_macs": useful,
                   "stall.unused_macs": max(0.0, active - useful), "stall.weight_stall": wstall,
                   "stall.weight_shift": wshift,
                   "stall.non_matrix": max(0.0, 1 - active - wstall - wshift),
                   "stall.raw_stall": 0.0, "stall.input_stall": 0.01,
                   "memory.hbm_read_bytes": sum(r["hbm_bytes"] for r in lrows),
                   "memory.hbm_write_bytes": 0,
                   "arch.name": "tpu_v4", "arch.clock_hz": CLOCK_HZ,
                   "arch.peak_ops_per_cycle": 2 * peak, "arch.peak_macs_per_cycle": peak,
                   "arch.mxus": MXUS, "config.mxu.rows": n, "config.mxu.cols": n,
                   "config.memory.bandwidth_gbps": HBM_GBPS,
                   "workload.name": os.path.basename(workload)[:-5],
                   "run_dir": os.path.join("points", p.hash),
                   "command": "", "point": json.dumps(opts, sort_keys=True, separators=(",", ":"))}
            rows.append(row)
    # One failed point: plots must leave it out.
    opts = {"arch": "configs/arch/tpu_v4.yaml", "workload": "configs/workloads/resnet50.yaml",
            "no-functional": True, "set": {"mxu.rows": 0, "mxu.cols": 0}}
    p = spec.Point(len(rows), opts)
    rows.append({"hash": p.hash, "index": p.index, "status": "bad_input", "exit_code": 2,
                 "label": "workload=resnet50 mxu.rows=0 mxu.cols=0", **p.columns,
                 "error": "tpusim: error: <command line>: --set mxu.rows: expected an integer in "
                          "[1, 4096] PEs, found '0'",
                 "point": json.dumps(opts, sort_keys=True, separators=(",", ":"))})
    return rows


def pod_points(rng):
    rows = []
    dims = [[1, 1, 1], [2, 2, 1], [4, 2, 2], [4, 4, 4], [8, 8, 4], [16, 8, 8], [16, 16, 16]]
    compute_s = 2.0e-3        # one chip's step
    grad_bytes = 2 * 110e6    # BERT-base gradients in bf16
    link_bps = 50e9
    for mode_batch in (32, 128):
        for d in dims:
            chips = d[0] * d[1] * d[2]
            opts = {"arch": "configs/arch/tpu_v4.yaml", "pod": "configs/pod/v4_16x16x16.yaml",
                    "workload": "configs/workloads/bert_base_128.yaml", "mode": "training",
                    "batch": mode_batch, "no-functional": True, "pod-set": {"dims": d}}
            p = spec.Point(len(rows), spec.canonical(opts))
            step_compute = compute_s * mode_batch / 32
            if chips == 1:
                comm = 0.0
            else:
                ring = 2 * (chips - 1) / chips * grad_bytes / (2 * len([x for x in d if x > 1]) * link_bps)
                comm = ring + 2 * 5e-6 * sum(x - 1 for x in d) * rng.uniform(1.0, 1.2)
            exposed = max(0.0, comm - 0.5 * step_compute)
            step = step_compute + exposed
            rows.append({"hash": p.hash, "index": p.index, "status": "ok", "exit_code": 0,
                         "label": f"batch={mode_batch} pod-set.dims={spec._format(d)}",
                         **p.columns, "total_cycles": int(step_compute * CLOCK_HZ),
                         "seconds": step_compute, "pod.chips": chips,
                         "pod.topology": "torus,torus,torus", "pod.step_seconds": step,
                         "pod.comm_seconds": comm, "pod.exposed_comm_seconds": exposed,
                         "pod.throughput": chips * mode_batch / step,
                         "pod.scaling_efficiency": step_compute / step,
                         "point": json.dumps(opts, sort_keys=True, separators=(",", ":"))})
    return rows


def write(out):
    rng = random.Random(7)
    os.makedirs(out, exist_ok=True)

    for name, rows in (("array_size.csv", array_points(rng, out)), ("pod_size.csv", pod_points(rng))):
        settings = []
        for r in rows:
            settings += [c for c in spec.point_columns(json.loads(r["point"])) if c not in settings]

        def order(cols):
            return runner.order_columns(cols, settings)

        t = table.CsvTable(os.path.join(out, name))
        for r in rows:
            t.put({k: (round(v, 9) if isinstance(v, float) else v) for k, v in r.items()}, order)
        os.unlink(os.path.join(out, name + ".lock"))


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(
        same_tree(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    target = os.path.join(HERE, "fixture")
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write(os.path.join(tmp, "fixture"))
            if not same_tree(os.path.join(tmp, "fixture"), target):
                print("tests/scripts/fixture differs from make_fixture.py's output; rerun it",
                      file=sys.stderr)
                return 1
        return 0
    if os.path.exists(target):
        shutil.rmtree(target)
    write(target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Edge TPU validation (issue 8): runs a few int8 models at batch 1 on the Edge TPU presets
(USB 3.0 and PCIe Gen2 x1, 500 MHz "max" clock, and USB at the standard 250 MHz) and
tabulates the parameter cache (bytes cached on chip, bytes streamed per inference), the
inference time on each link and the TOPS achieved, next to Coral's published times where
one exists. scripts/validate.py writes markdown()'s tables into docs/validation.md, whose
Edge TPU section has the commentary.

Usage: /usr/bin/python3 -m scripts.tpuvalidate.edgetpu [--tpusim build/tpusim] [--out DIR]
"""
import argparse
import json
import pathlib
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

# (label, workload, what it is, Coral's published USB Accelerator time in ms or None).
# Coral = coral.ai/docs/edgetpu/benchmarks, "Desktop CPU + USB Accelerator (USB 3.0) with
# Edge TPU", time per inference (P). Their ResNet-50 is v1 at 299x299, ours v1.5 at 224x224:
# not the same model, so no published figure is put next to it.
MODELS = [
    ("MobileNet v1", "configs/workloads/mobilenet_v1.yaml", "1.0 224, fits the cache", 2.4),
    ("MobileNet v2", "configs/workloads/mobilenet_v2.yaml", "1.0 224, fits the cache", 2.6),
    ("MLP 2048x4", "configs/workloads/gemm_mlp.yaml", "4 FC layers, 1.8x the cache", None),
    ("ResNet-50", "configs/workloads/resnet50.yaml", "v1.5 224, 3.2x the cache", None),
]

# (key, arch preset, extra --set overrides, column title).
LINKS = [
    ("usb", "configs/arch/edgetpu.yaml", [], "USB 3.0, 500 MHz"),
    ("pcie", "configs/arch/edgetpu_pcie.yaml", [], "PCIe Gen2 x1, 500 MHz"),
    ("usb_std", "configs/arch/edgetpu.yaml", ["clock_mhz=250"], "USB 3.0, 250 MHz (std)"),
]

# The model that is also run with --check: streamed parameters keep the numbers bit-exact.
CHECKED = "configs/workloads/gemm_mlp.yaml"


def _run(tpusim, arch, sets, workload, out, check):
    cmd = [tpusim, "run", "--arch", str(ROOT / arch), "--workload", str(ROOT / workload),
           "--batch", "1", "--dtype", "int8", "--out", str(out)]
    cmd += ["--check"] if check else ["--no-functional"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return json.loads((pathlib.Path(out) / "report.json").read_text())


def run(tpusim: str, out_dir: str) -> dict:
    """Runs every model on every link variant; returns the figures markdown() tabulates."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {"models": [], "links": [{"key": k, "arch": a, "sets": s, "title": t} for k, a, s, t in LINKS]}
    for label, workload, what, published_ms in MODELS:
        row = {"model": label, "workload": workload, "what": what, "published_usb_ms": published_ms,
               "runs": {}}
        for key, arch, sets, _ in LINKS:
            check = key == "usb" and workload == CHECKED
            rep = _run(tpusim, arch, sets, workload, out / f"{pathlib.Path(workload).stem}_{key}", check)
            m = rep["memory"]
            row["runs"][key] = {
                "cycles": rep["total_cycles"],
                "seconds": rep["seconds"],
                "achieved_tops": rep["achieved_tops"],
                "peak_tops": rep["arch"]["peak_ops_per_cycle"] * rep["arch"]["clock_hz"] / 1e12,
                "host_to_device_bytes": m["host_to_device_bytes"],
                "host_to_device_busy_s": m["host_to_device_busy_cycles"] / rep["arch"]["clock_hz"],
                "host_link_busy_fraction": m["host_link_busy_fraction"],
                "parameter_load_seconds": m["parameter_load_seconds"],
                "bit_exact": (all(o.get("matches_reference", False) for o in rep["outputs"])
                              if check else None),
            }
            # The placement does not depend on the link or the clock: take it from any run.
            row.update(macs=rep["macs"], parameter_bytes=m["parameter_bytes"],
                       cached_bytes=m["parameters_resident_bytes"],
                       streamed_bytes=m["parameters_streamed_bytes"],
                       cache_bytes=m["parameter_cache_bytes"])
        results["models"].append(row)
    return results


def _mb(b):
    return f"{b / 1e6:.2f}"


def _ms(s):
    return f"{s * 1e3:.2f}"


def markdown(results: dict) -> str:
    """The section's tables: parameter placement, then time and TOPS per link."""
    models = results["models"]
    cache = models[0]["cache_bytes"] if models else 0
    lines = [f"Parameter cache: {cache:,} bytes ({cache / 2**20:.2f} MiB) usable.", "",
             "| model | MACs | parameters (MB) | cached on chip (MB) | streamed per inference (MB) | one-time load at model load (ms, USB) |",
             "|---|---|---|---|---|---|"]
    for r in models:
        lines.append(f"| {r['model']} ({r['what']}) | {r['macs'] / 1e6:,.0f} M | {_mb(r['parameter_bytes'])} | "
                     f"{_mb(r['cached_bytes'])} | {_mb(r['streamed_bytes'])} | "
                     f"{_ms(r['runs']['usb']['parameter_load_seconds'])} |")
    lines += ["", "| model | " + " | ".join(f"{l['title']}: ms (TOPS)" for l in results["links"]) +
              " | host link busy (USB, ms) | Coral published, USB (ms) |",
              "|---|" + "---|" * (len(results["links"]) + 2)]
    for r in models:
        cells = [f"{_ms(r['runs'][l['key']]['seconds'])} ({r['runs'][l['key']]['achieved_tops']:.3f})"
                 for l in results["links"]]
        pub = f"{r['published_usb_ms']}" if r["published_usb_ms"] is not None else "-"
        lines.append(f"| {r['model']} | " + " | ".join(cells) +
                     f" | {_ms(r['runs']['usb']['host_to_device_busy_s'])} | {pub} |")
    checked = [r for r in models if r["runs"]["usb"]["bit_exact"] is not None]
    if checked:
        lines += [""] + [f"{r['model']} on USB with `--check`: outputs "
                         f"{'equal' if r['runs']['usb']['bit_exact'] else 'DIFFER FROM'} the reference "
                         f"bit for bit ({_mb(r['streamed_bytes'])} MB of parameters streamed)."
                         for r in checked]
    peak = models[0]["runs"]["usb"]["peak_tops"] if models else 0
    lines += ["", f"Peak: {peak:.2f} TOPS at 500 MHz, "
              f"{models[0]['runs']['usb_std']['peak_tops']:.2f} at 250 MHz." if models else ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tpusim", default=str(ROOT / "build" / "tpusim"))
    ap.add_argument("--out", default=None, help="run directories (default: a temporary one)")
    args = ap.parse_args()
    if args.out:
        print(markdown(run(args.tpusim, args.out)), end="")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print(markdown(run(args.tpusim, tmp)), end="")

#!/usr/bin/python3
"""Issue 8, "Pods": the all-reduce and bisection bandwidth of the TPU v3, v4 and v5e pods,
simulated with `tpusim collective` on the pod presets and set next to Google's published
figures, each simulated figure computed the way the published one is defined.

run(tpusim, out_dir) runs the simulator and returns the figures; markdown(results) returns
the "Pods" section of docs/validation.md, which scripts/validate.py writes there;
`scripts/tpuvalidate/pods.py` prints it alone.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BYTES = "1GiB"      # per chip: 256 Mi fp32 gradients
BYTES_N = 1 << 30
TARGET = 0.10       # issue 8: within 10% of the published figure

# Published figures (REFERENCE_DATA.md, "TPU v2 to v5e", tag P; Cloud TPU system-architecture
# pages = CT).
PODS = (
    {"key": "v3", "name": "TPU v3", "preset": "configs/pod/v3_32x32.yaml",
     "published_all_reduce": 340e12, "published_all_reduce_text": "340 TB/s",
     "published_bisection": 6.4e12, "published_bisection_text": "6.4 TB/s"},
    {"key": "v4", "name": "TPU v4", "preset": "configs/pod/v4_16x16x16.yaml",
     "published_all_reduce": 1.1e15, "published_all_reduce_text": "1.1 PB/s",
     "published_bisection": 24e12, "published_bisection_text": "24 TB/s"},
    {"key": "v5e", "name": "TPU v5e", "preset": "configs/pod/v5e_16x16.yaml",
     "published_all_reduce": 51.2e12, "published_all_reduce_text": "51.2 TB/s",
     "published_bisection": 1.6e12, "published_bisection_text": "1.6 TB/s"},
)

# Runs that explain a gap: the preset with one value taken from another source. They are
# reported beside the preset's figures, never instead of them.
WHAT_IF = (
    {"key": "v4", "set": "link_bandwidth_gbps=45", "link_text": "45 GB/s",
     "why": "SB's one-way ICI link bandwidth for TPU v4p, 4.5e10 bytes/s; the preset's 50 GB/s "
            "is tagged S"},
)


def _collective(tpusim, args, out_path):
    """Runs `tpusim collective ARGS --json`, keeps its output in out_path, returns it parsed."""
    cmd = [tpusim, "collective", *args, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200,
                       env=dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1"))
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(p.stdout)
    return json.loads(p.stdout)


def _measure(tpusim, preset, sets, out_dir, tag):
    """The all-reduce and the bisection pattern on one pod: the figures that the table needs."""
    extra = [a for s in sets for a in ("--set", s)]
    ar = _collective(tpusim, ["--pod", preset, *extra, "--op", "all-reduce", "--bytes", BYTES,
                              "--algorithm", "multi-torus"],
                     os.path.join(out_dir, f"pods_{tag}_all_reduce.json"))
    bi = _collective(tpusim, ["--pod", preset, *extra, "--op", "bisection", "--bytes", BYTES],
                     os.path.join(out_dir, f"pods_{tag}_bisection.json"))
    chips = ar["chips"]
    # Ports in use: one per dimension and direction (every preset links each of its
    # 2 x dims neighbours, and its ports_per_chip says so too).
    ports = 2 * sum(1 for n in ar["dims"] if n > 1)
    return {
        "chips": chips,
        "dims": ar["dims"],
        "ports": ports,
        "link_bandwidth": ar["link_bandwidth"],
        "all_reduce_seconds": ar["seconds"],
        "closed_form_seconds": ar["closed_form_seconds"],
        # The published definition: bytes all chips injected per second.
        "all_reduce": ar["injection_bandwidth"],
        # The same, written as NCCL's bus bandwidth summed over chips (equal on these pods).
        "bus_bandwidth_sum": chips * 2 * (chips - 1) / chips * ar["bytes"] / ar["seconds"],
        # The other reading of "all-reduce bandwidth", for contrast.
        "algorithm_bandwidth_sum": ar["chips_x_algorithm_bandwidth"],
        "injection_peak": chips * ports * ar["link_bandwidth"],
        "bisection": bi["bandwidth_per_direction"],
        "bisection_seconds": bi["seconds"],
        "bisection_dim": bi["dim"],
        "cut_links": bi["cut_links"],
        "cut_capacity": bi["cut_capacity_per_direction"],
    }


def run(tpusim: str, out_dir: str) -> dict:
    """Simulates a 1 GiB all-reduce and the bisection pattern on each pod preset (and the
    what-if runs), keeping tpusim's JSON output in out_dir; returns the figures and errors."""
    os.makedirs(out_dir, exist_ok=True)
    results = {"bytes": BYTES_N, "target": TARGET, "pods": [], "what_if": []}
    for pod in PODS:
        m = _measure(tpusim, os.path.join(REPO, pod["preset"]), [], out_dir, pod["key"])
        m.update(pod)
        m["all_reduce_error"] = m["all_reduce"] / pod["published_all_reduce"] - 1
        m["bisection_error"] = m["bisection"] / pod["published_bisection"] - 1
        # The link bandwidth each published figure implies under its definition.
        m["implied_link_all_reduce"] = pod["published_all_reduce"] / (m["chips"] * m["ports"])
        m["implied_link_bisection"] = pod["published_bisection"] / m["cut_links"]
        results["pods"].append(m)
    for w in WHAT_IF:
        pod = next(p for p in PODS if p["key"] == w["key"])
        tag = w["key"] + "_" + w["set"].replace("=", "_")
        m = _measure(tpusim, os.path.join(REPO, pod["preset"]), [w["set"]], out_dir, tag)
        m.update(w)
        m["name"] = pod["name"]
        m["all_reduce_error"] = m["all_reduce"] / pod["published_all_reduce"] - 1
        m["bisection_error"] = m["bisection"] / pod["published_bisection"] - 1
        results["what_if"].append(m)
    return results


def _bw(x):
    return f"{x / 1e15:.3f} PB/s" if x >= 1e15 else f"{x / 1e12:.2f} TB/s"


def _pct(e):
    return "0.0%" if abs(e) < 0.0005 else f"{100 * e:+.1f}%"


def _ok(e, target):
    return "yes" if abs(e) <= target else "**no**"


def markdown(results: dict) -> str:
    """The "Pods" section of docs/validation.md: tables and explanation."""
    pods = {p["key"]: p for p in results["pods"]}
    target = results["target"]
    v3, v4, v5e = pods["v3"], pods["v4"], pods["v5e"]
    w4 = next(w for w in results["what_if"] if w["key"] == "v4")
    out = []
    add = out.append
    add("## Pods: all-reduce and bisection bandwidth (issue 8)\n")
    add("Reproduce (about a second; `scripts/validate.py` writes this section into "
        "docs/validation.md, this command prints it alone):\n")
    add("```\n/usr/bin/python3 scripts/tpuvalidate/pods.py --tpusim build/tpusim\n```\n")
    add("It runs, for each pod preset, `tpusim collective --pod configs/pod/<pod>.yaml --op "
        "all-reduce --bytes 1GiB --algorithm multi-torus --json` and `... --op bisection --bytes "
        "1GiB --json`. Published figures: the Cloud TPU system-architecture pages (CT: "
        "cloud.google.com/tpu/docs/v3, /v4, /v5e), tag P in REFERENCE_DATA.md. Link bandwidths "
        "are the presets' (v3 100 GB/s, S: SB's estimate; v4 50 GB/s, S; v5e 50 GB/s, P), per "
        "link and direction; link latency 1 us (I, assumed). Tests: `PodBisection.*` and "
        "`PodValidation.*` (tests/unit/pod_validation_test.cpp: the figures against exact "
        "formulas, and within 0.5% of this page), `Scripts.pods.*` (tests/scripts/test_pods.py: "
        "this page against a fresh run).\n")

    add("### All-reduce bandwidth per pod\n")
    add("| pod | chips | published | definition | simulated, same definition | error | within "
        f"{100 * target:.0f}% | chips x bytes / time (not the definition) |")
    add("|---|---|---|---|---|---|---|---|")
    for p in results["pods"]:
        add(f"| {p['name']} {'x'.join(str(n) for n in p['dims'])} | {p['chips']} | "
            f"{p['published_all_reduce_text']} | sum over chips of ICI injection "
            f"({p['ports']} ports x link bandwidth, one direction) | {_bw(p['all_reduce'])} | "
            f"{_pct(p['all_reduce_error'])} | {_ok(p['all_reduce_error'], target)} | "
            f"{_bw(p['algorithm_bandwidth_sum'])} |")
    add("")
    add("Simulated: a 1 GiB all-reduce per chip (256 Mi fp32 gradients; `tpusim collective` times "
        "the network alone, the additions are the chip model's) with the multi-torus schedule, "
        "which keeps every port busy in every phase. The figure is the bytes all chips sent into the network "
        "(counted by the network model per transfer) divided by the simulated time: "
        + ", ".join(f"{p['name']} {1e3 * p['all_reduce_seconds']:.2f} ms" for p in results["pods"])
        + ". On these pods it equals chips x 2(p-1)/p x bytes / time, the sum over chips of "
        "NCCL's \"bus bandwidth\" (each chip sends 2(p-1)/p of its buffer), and it stays below the "
        "ports' peak (chips x ports x link bandwidth: "
        + ", ".join(f"{p['name']} {_bw(p['injection_peak'])}" for p in results["pods"])
        + ") only by the link latencies, 2 sum(d_i - 1) of them.\n")

    add("### Bisection bandwidth per pod\n")
    add(f"| pod | published | definition | cut | simulated, same definition | error | within "
        f"{100 * target:.0f}% |")
    add("|---|---|---|---|---|---|---|")
    for p in results["pods"]:
        add(f"| {p['name']} | {p['published_bisection_text']} | links crossing the cut that "
            f"halves the pod, one direction, wrap-around links included, x link bandwidth | "
            f"dimension {p['bisection_dim']} in half: {p['cut_links']} links per direction | "
            f"{_bw(p['bisection'])} | {_pct(p['bisection_error'])} | "
            f"{_ok(p['bisection_error'], target)} |")
    add("")
    add("Simulated (`--op bisection`, sim/pod/bisection.h): every chip sends 1 GiB to the chip "
        "half way round the cut dimension (of the even dimensions, the one whose cut crosses the "
        "fewest links), half of it each way round the ring, so every byte crosses the cut and "
        "the links the cut crosses are busy the whole time. The figure is the bytes that the cut's "
        "links carried from one half to the other (counted on those links), divided by the "
        "simulated time. It equals the cut's link count x link bandwidth up to one route's "
        "latency (tested on every preset and on small tori and meshes).\n")

    add("### How the published figures are defined, and the evidence\n")
    add("- **All-reduce bandwidth = the sum over chips of the bandwidth each chip injects into "
        "the ICI** (all ports, one direction), which is what an all-reduce that keeps every port "
        "busy achieves as bus bandwidth. TPU v5e: CT gives the per-chip ICI bandwidth as "
        "1,600 Gbps (200 GB/s = 4 ports x 50 GB/s; a later revision of the page says "
        "\"bidirectional, 400 GBps\"), and 256 x 200 GB/s = 51.2 TB/s exactly. TPU v4: 4096 "
        "chips x 6 ports x 45 GB/s (SB's one-way v4p link bandwidth) = 1.106 PB/s, published "
        "1.1 PB/s. The other reading, algorithm bandwidth summed over chips (chips x bytes / "
        "time), is half of it for a large all-reduce and misses every published figure by about "
        "a factor of 2 (last column above), so it is not what Google reports.")
    add("- **Bisection bandwidth = the links crossing the cut that halves the pod, in one "
        "direction, wrap-around links included, times the link bandwidth.** TPU v5e: the cut "
        "through a 16x16 torus crosses 16 lines x 2 links (the middle and the wrap-around) = 32 "
        "links x 50 GB/s = 1.6 TB/s exactly; TPU v3: 32 x 2 x 100 GB/s = 6.4 TB/s exactly. The "
        "same numbers come out of both directions without the wrap-around links; the pods are "
        "tori, so the reading with every link that crosses the cut is the natural one. (Dally and "
        "Towles count channels in both directions: twice these.)\n")

    add("### Gaps over 10%, explained\n")
    add(f"- **TPU v3 all-reduce, {_pct(v3['all_reduce_error'])}.** The preset's link is SB's "
        f"estimate of 100 GB/s per direction (S). Under the definition that fixes v5e's figure "
        f"exactly, Google's 340 TB/s implies {v3['implied_link_all_reduce'] / 1e9:.0f} GB/s per "
        f"link (340 TB/s / 1024 chips / 4 ports), while Google's own 6.4 TB/s bisection implies "
        f"{v3['implied_link_bisection'] / 1e9:.0f} GB/s (6.4 TB/s / {v3['cut_links']} links), "
        "which the simulation meets exactly. The two published v3 figures cannot both hold for "
        "one link bandwidth; the preset follows SB and the bisection, so the all-reduce figure "
        "is the one that misses. A primary source for v3's link rate (not in REFERENCE_DATA.md) "
        "would settle which one; the preset is not changed to fit. A lead to check, not verified "
        "here (the paper is not reachable from this machine): the processor table of Jouppi et "
        "al., \"A Domain-Specific Supercomputer for Training Deep Neural Networks\" (CACM 2020), "
        "is recalled as giving ICI as 4 links at 496 Gbit/s (TPUv2) and 656 Gbit/s (TPUv3). "
        "496 Gbit/s is 62 GB/s, the v2 preset's secondary figure; 656 Gbit/s is 82 GB/s, which "
        f"would put the all-reduce at {1024 * 4 * 82e9 / 340e12 * 100 - 100:+.1f}% (ports' peak) "
        f"and the bisection at {v3['cut_links'] * 82e9 / 6.4e12 * 100 - 100:+.1f}%: it would move "
        "the miss, not remove it.")
    add(f"- **TPU v4 all-reduce, {_pct(v4['all_reduce_error'])}** (bisection "
        f"{_pct(v4['bisection_error'])}). The preset's 50 GB/s per link is tagged S; SB gives "
        f"4.5e10 bytes/s one-way for v4p, and the published figures imply "
        f"{v4['implied_link_all_reduce'] / 1e9:.1f} GB/s (all-reduce) and "
        f"{v4['implied_link_bisection'] / 1e9:.1f} GB/s (bisection, 24 TB/s / "
        f"{v4['cut_links']} links). The same simulation with {w4['link_text']} links "
        f"(`--set {w4['set']}`: {w4['why']}; a what-if, not the preset) gives "
        f"{_bw(w4['all_reduce'])} "
        f"({_pct(w4['all_reduce_error'])}) and a bisection of {_bw(w4['bisection'])} "
        f"({_pct(w4['bisection_error'])}). The gap is the preset's secondary link bandwidth, "
        "not the network model. The two link figures may both be right: summaries of J23 give "
        "each v4 link 400 Gb/s per direction (the preset's 50 GB/s, a line rate) and SB's 45 GB/s "
        "is 90% of it (a payload rate after link-layer overhead). Google's v4 figures would then "
        "use the payload rate and its v5e figure (exactly 256 x 4 x 50 GB/s) the line rate; one "
        "link model cannot match both, and the preset keeps the line rate the team's reference "
        "data gives.")
    add("- The assumed 1 us link latency (I) costs each all-reduce 2 sum(d_i - 1) latencies, "
        "which puts the simulated figure below the ports' peak by "
        f"{100 * (1 - v3['all_reduce'] / v3['injection_peak']):.1f}% (v3), "
        f"{100 * (1 - v4['all_reduce'] / v4['injection_peak']):.1f}% (v4) and "
        f"{100 * (1 - v5e['all_reduce'] / v5e['injection_peak']):.1f}% (v5e); it does not "
        "explain the gaps, which point the other way.\n")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tpusim", default=os.environ.get("TPUSIM") or os.path.join(REPO, "build", "tpusim"),
                    help="the tpusim binary (default $TPUSIM, else build/tpusim)")
    ap.add_argument("--out-dir", help="keep tpusim's JSON outputs here (default a temporary directory)")
    a = ap.parse_args()
    if not (os.path.isfile(a.tpusim) and os.access(a.tpusim, os.X_OK)):
        print(f"pods.py: error: <command line>: --tpusim: expected an executable tpusim, found "
              f"'{a.tpusim}'", file=sys.stderr)
        return 2
    if a.out_dir:
        results = run(a.tpusim, a.out_dir)
    else:
        with tempfile.TemporaryDirectory() as d:
            results = run(a.tpusim, d)
    sys.stdout.write(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

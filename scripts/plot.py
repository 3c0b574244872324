#!/usr/bin/python3
"""Standard figures from a sweep's results table (CSV or SQLite, as scripts/sweep.py writes
it): utilization and cycles against a swept key, a per-layer roofline, stall breakdowns and
pod scaling curves, as PNG or SVG. docs/sweeps.md shows each figure.
"""

import argparse
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tpusweep import spec, table  # noqa: E402

PROG = "plot.py"
KINDS = ("utilization", "cycles", "roofline", "stalls", "scaling")
# Table 3 rows of Jouppi et al. 2017 that add up to all MXU cycles (report.json's
# stall_breakdown): array active = useful + unused MACs, then the three kinds of idle.
POINT_STALLS = [("stall.useful_macs", "useful MACs"), ("stall.unused_macs", "unused MACs"),
                ("stall.weight_stall", "weight stall"), ("stall.weight_shift", "weight shift"),
                ("stall.non_matrix", "non-matrix")]
LAYER_STALLS = [("fill_drain", "fill/drain"), ("weight_shift", "weight shift"),
                ("weight_stall", "weight stall"), ("input_stall", "input stall"),
                ("raw_stall", "RAW stall")]
PREFERRED_X = ("set.mxu.rows", "set.mxu.cols", "config.mxu.rows", "batch", "set.unified_buffer.bytes")


class PlotError(Exception):
    pass


def fail(msg, code=2):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(code)


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def setting_columns(rows):
    """Each row's point settings as columns (from the `point` column), in first-seen order."""
    names = []
    for r in rows:
        try:
            opts = json.loads(r.get("point") or "{}")
        except ValueError:
            opts = {}
        r["_settings"] = spec.point_columns(opts)
        for k in r["_settings"]:
            if k not in names:
                names.append(k)
    return names


def varying(rows, names):
    return [c for c in names if len({json.dumps(r["_settings"].get(c, r.get(c)), sort_keys=True)
                                     for r in rows}) > 1]


def short(col, v):
    if col in spec.FILE_OPTIONS and isinstance(v, str):
        v = os.path.splitext(os.path.basename(v))[0]
    return f"{col[4:] if col.startswith('set.') else col}={'-' if v is None else v}"


def series_of(rows, cols):
    """Rows grouped by their values of cols, in first-seen order: [(label, rows)]."""
    groups = {}
    for r in rows:
        key = tuple(json.dumps(r["_settings"].get(c, r.get(c))) for c in cols)
        label = " ".join(short(c, r["_settings"].get(c, r.get(c))) for c in cols) or "all points"
        groups.setdefault(key, (label, []))[1].append(r)
    return list(groups.values())


def value(r, col):
    v = r["_settings"].get(col, r.get(col))
    if isinstance(v, str):
        v = table.parse_cell(v.strip())
    return v


def log2_axis(ax, values, axis="x"):
    vals = [v for v in values if _num(v) and v > 0]
    if vals and (max(vals) / min(vals) >= 8):
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
        ticks = sorted(set(vals))
        if len(ticks) <= 12 and axis == "x":
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks])
            ax.minorticks_off()


class Plotter:
    def __init__(self, args, rows, results_dir):
        self.args, self.results_dir = args, results_dir
        # Table order is completion order; the sweep's order makes figures reproducible.
        rows = sorted(rows, key=lambda r: (not _num(r.get("index")), r.get("index") or 0,
                                           str(r.get("hash"))))
        self.settings = setting_columns(rows)
        self.rows = [r for r in rows if r.get("status") == "ok"]
        for cond in args.where or []:
            k, _, v = cond.partition("=")
            want = table.parse_cell(v)
            self.rows = [r for r in self.rows if value(r, k) == want or str(value(r, k)) == v]
        self.varying = varying(self.rows, self.settings) if self.rows else []
        self.written = []

    def save(self, fig, name):
        os.makedirs(self.args.out, exist_ok=True)
        path = os.path.join(self.args.out, f"{name}.{self.args.format}")
        meta = {"Date": None} if self.args.format == "svg" else {"Software": None}
        fig.savefig(path, format=self.args.format, dpi=self.args.dpi, bbox_inches="tight",
                    metadata=meta)
        plt.close(fig)
        self.written.append(path)

    def x_column(self):
        if self.args.x:
            if not any(value(r, self.args.x) is not None for r in self.rows):
                raise PlotError(f"--x: expected a setting ({', '.join(self.settings)}) or a "
                                f"metric column of the table, found '{self.args.x}'")
            return self.args.x
        numeric = [c for c in self.varying
                   if all(_num(value(r, c)) for r in self.rows)]
        for c in PREFERRED_X:
            if c in numeric:
                return c
        if numeric:
            return numeric[0]
        for c in ("config.mxu.rows", "config.unified_buffer.bytes", "config.memory.bandwidth_gbps"):
            if len({value(r, c) for r in self.rows}) > 1:
                return c
        raise PlotError("--x: no numeric setting varies between the points; name one with --x")

    def series_columns(self, exclude):
        if self.args.series:
            return [s for s in self.args.series.split(",") if s]
        skip = set(exclude)
        # Square arrays sweep rows and cols together: the partner of x is not a series.
        if any(c in skip for c in ("set.mxu.rows", "set.mxu.cols")):
            skip |= {"set.mxu.rows", "set.mxu.cols"}
        return [c for c in self.varying if c not in skip]

    def need_rows(self, kind):
        if not self.rows:
            raise PlotError("no finished (status ok) points in the table")

    def xy_plot(self, kind, ycol, ylabel, scale, logy):
        self.need_rows(kind)
        x = self.x_column()
        fig, ax = plt.subplots(figsize=(7, 4.5))
        allx = []
        for label, rs in series_of(self.rows, self.series_columns([x])):
            pts = sorted((value(r, x), r.get(ycol)) for r in rs
                         if _num(value(r, x)) and _num(r.get(ycol)))
            if not pts:
                continue
            allx += [p[0] for p in pts]
            ax.plot([p[0] for p in pts], [p[1] * scale for p in pts], marker="o", label=label)
        if not allx:
            raise PlotError(f"no point has numeric {x} and {ycol}")
        log2_axis(ax, allx)
        if logy:
            ax.set_yscale("log")
        xname = x[4:] if x.startswith("set.") else x
        if x == "set.mxu.rows" and all(value(r, "set.mxu.cols") == value(r, x) for r in self.rows):
            xname = "array size (mxu.rows = mxu.cols)"
        ax.set_xlabel(xname)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel.split(' (')[0].capitalize()} vs {xname}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        self.save(fig, kind)

    def utilization(self):
        self.xy_plot("utilization", "utilization", "utilization (% of peak)", 100.0, False)

    def cycles(self):
        self.xy_plot("cycles", "total_cycles", "cycles", 1.0, True)

    def layers_of(self, r):
        d = r.get("run_dir")
        if not d:
            return None
        path = os.path.join(d if os.path.isabs(d) else os.path.join(self.results_dir, d),
                            "layers.csv")
        if not os.path.exists(path):
            return None
        with open(path, newline="", encoding="utf-8") as f:
            return [{k: table.parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def roofline(self):
        self.need_rows("roofline")
        per_mac = self.args.intensity == "macs"
        rows = [r for r in self.rows if _num(r.get("arch.peak_ops_per_cycle"))
                and _num(r.get("arch.clock_hz"))]
        if not rows:
            raise PlotError("the table has no arch.peak_ops_per_cycle / arch.clock_hz")
        groups = series_of(rows, self.series_columns([]))
        if not self.args.series and len(groups) > 10:
            groups = self.roof_groups(rows)
        show_layers = self.args.layers == "on" or (self.args.layers == "auto" and len(rows) <= 8)
        fig, ax = plt.subplots(figsize=(8, 5.5))
        cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "viridis")
        xs, skipped, roofs = [], 0, {}
        for gi, (label, rs) in enumerate(groups):
            color = cmap(gi if len(groups) <= 10 else gi / max(1, len(groups) - 1))
            for r in rs:
                peak = r["arch.peak_ops_per_cycle"] * r["arch.clock_hz"]
                bw = r.get("config.memory.bandwidth_gbps")
                roofs.setdefault((peak, bw if _num(bw) else None), set()).add(color)
                hbm = (r.get("memory.hbm_read_bytes") or 0) + (r.get("memory.hbm_write_bytes") or 0)
                if _num(r.get("macs")) and r["macs"] > 0 and hbm > 0 and _num(r.get("seconds")):
                    xi = (1 if per_mac else 2) * r["macs"] / hbm
                    xs.append(xi)
                    ax.scatter([xi], [2 * r["macs"] / r["seconds"] / 1e12], marker="*", s=140,
                               color=color, edgecolor="black", linewidth=0.5, zorder=3,
                               label=label if r is rs[0] else None)
                if not show_layers:
                    continue
                for layer in self.layers_of(r) or []:
                    macs, cyc, b = layer.get("macs"), layer.get("cycles"), layer.get("hbm_bytes")
                    if not (_num(macs) and macs > 0 and _num(cyc) and cyc > 0):
                        continue
                    if not (_num(b) and b > 0):
                        skipped += 1
                        continue
                    xi = (1 if per_mac else 2) * macs / b
                    xs.append(xi)
                    ax.scatter([xi], [2 * macs / (cyc / r["arch.clock_hz"]) / 1e12], s=14,
                               color=color, alpha=0.6, zorder=2)
        if not xs:
            raise PlotError("no point or layer has MACs and off-chip bytes")
        lo, hi = min(xs) / 4, max(xs) * 4
        for (peak, bw) in roofs:
            if bw:
                ridge = peak / (bw * 1e9) / (2 if per_mac else 1)
                lo, hi = min(lo, ridge / 4), max(hi, ridge * 4)
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        seen_peaks = set()
        # A roof takes its series' colour when each series has a roof of its own.
        own = len(roofs) == len(groups) and all(len(c) == 1 for c in roofs.values())
        for (peak, bw), colors in roofs.items():
            color = next(iter(colors)) if own and len(roofs) > 1 else "gray"
            if bw:
                ridge = peak / (bw * 1e9) / (2 if per_mac else 1)
                ys = [min(peak, bw * 1e9 * x * (2 if per_mac else 1)) / 1e12 for x in grid]
                ax.plot(grid, ys, color=color, linewidth=1.2, zorder=1, alpha=0.8,
                        label=f"roof: {peak / 1e12:,.1f} TOPS, {bw:g} GB/s "
                              f"(ridge {ridge:,.0f} {'MACs' if per_mac else 'ops'}/B)")
            elif peak not in seen_peaks:
                ax.axhline(peak / 1e12, color=color, linewidth=1.2, zorder=1)
            if peak not in seen_peaks:
                ax.annotate(f"peak {peak / 1e12:,.1f} TOPS", xy=(hi, peak / 1e12), xytext=(-4, 4),
                            textcoords="offset points", ha="right", fontsize=7, color="dimgray")
                seen_peaks.add(peak)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        unit = "MACs" if per_mac else "ops"
        ax.set_xlabel(f"operational intensity ({unit} per off-chip byte)")
        ax.set_ylabel("achieved TOPS (2 ops per MAC)")
        ax.set_title("Roofline: " + ("each point (stars) and its layers (dots)" if show_layers
                                     else "each point"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  ncol=1 if len(groups) <= 16 else 2)
        if skipped:
            print(f"roofline: {skipped} layers with no off-chip bytes left out "
                  "(infinite intensity)")
        self.save(fig, "roofline")

    def roof_groups(self, rows):
        """Rows grouped by their roofs (peak and bandwidth), for sweeps with many points."""
        groups = {}
        for r in rows:
            peak = r["arch.peak_ops_per_cycle"] * r["arch.clock_hz"] / 1e12
            bw = r.get("config.memory.bandwidth_gbps")
            label = f"peak {peak:,.1f} TOPS" + (f", {bw:g} GB/s" if _num(bw) else "")
            groups.setdefault((peak, bw if _num(bw) else 0), (label, []))[1].append(r)
        return [groups[k] for k in sorted(groups)]

    def stalls(self):
        self.need_rows("stalls")
        rows = [r for r in self.rows if any(_num(r.get(c)) for c, _ in POINT_STALLS)]
        if not rows:
            raise PlotError("the table has no stall.* columns")
        labels = [r.get("label") or r.get("hash") for r in rows]
        fig, ax = plt.subplots(figsize=(8, 0.8 + 0.32 * len(rows)))
        left = [0.0] * len(rows)
        for col, name in POINT_STALLS:
            vals = [100 * (r.get(col) or 0) for r in rows]
            ax.barh(range(len(rows)), vals, left=left, label=name)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("% of MXU cycles (TPU v1 Table 3 rows)")
        ax.set_xlim(0, 100)
        ax.set_title("Where the matrix units' cycles go, per point")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        self.save(fig, "stalls")
        chosen = rows
        if self.args.point:
            chosen = [r for r in rows if any(str(r.get("hash")).startswith(p) for p in self.args.point)]
        elif len(rows) > 4:
            chosen = []
            print(f"stalls: per-layer figures need --point HASH when there are more than 4 points "
                  f"({len(rows)} here)")
        for r in chosen:
            layers = self.layers_of(r)
            if layers:
                self.layer_stalls(r, layers)

    def layer_stalls(self, r, layers):
        names = [str(layer.get("name")) for layer in layers]
        n = len(layers)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(7, 0.22 * n + 2), 7), sharex=True)
        idx = range(n)
        compute = [min(layer.get("compute_cycles") or 0, layer.get("cycles") or 0) for layer in layers]
        rest = [(layer.get("cycles") or 0) - c for layer, c in zip(layers, compute)]
        top.bar(idx, compute, label="compute (busiest MXU busy + fill/drain)", color="tab:green")
        top.bar(idx, rest, bottom=compute, label="rest of the layer's cycles", color="lightgray")
        top.set_ylabel("cycles")
        top.set_title(f"{r.get('label') or r.get('hash')}: per layer")
        top.legend(fontsize=7)
        bottom_acc = [0] * n
        for col, name in LAYER_STALLS:
            vals = [layer.get(col) or 0 for layer in layers]
            bottom.bar(idx, vals, bottom=bottom_acc, label=name)
            bottom_acc = [a + b for a, b in zip(bottom_acc, vals)]
        bottom.set_ylabel("MXU cycles, summed over MXUs")
        bottom.legend(fontsize=7, ncol=5)
        bottom.set_xticks(list(idx))
        bottom.set_xticklabels(names, rotation=90, fontsize=6)
        for axis in (top, bottom):
            axis.grid(True, axis="y", alpha=0.3)
        self.save(fig, f"stalls_{r.get('hash')}")

    def scaling(self):
        self.need_rows("scaling")
        rows = [r for r in self.rows if _num(r.get("pod.chips"))]
        if not rows:
            raise PlotError("the table has no pod.chips column (pod points need "
                            "`tpusim run --pod`)")
        cols = self.series_columns([c for c in self.varying if c.startswith("pod")])
        panels = [("pod.throughput", "throughput (samples/s)", True),
                  ("pod.scaling_efficiency", "scaling efficiency (%)", False),
                  ("pod.step_seconds", "step time (ms)", True)]
        panels = [p for p in panels if any(_num(r.get(p[0])) for r in rows)]
        if not panels:
            raise PlotError("no pod.throughput, pod.scaling_efficiency or "
                            "pod.step_seconds values")
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
        groups = series_of(rows, cols)
        for ax, (col, ylabel, logy) in zip(axes[0], panels):
            for gi, (label, rs) in enumerate(groups):
                pts = sorted((r["pod.chips"], r[col]) for r in rs
                             if _num(r.get(col)) and (r[col] > 0 or not logy))
                if not pts:
                    continue
                scale = 100 if col == "pod.scaling_efficiency" else 1e3 if col == "pod.step_seconds" else 1
                line, = ax.plot([p[0] for p in pts], [p[1] * scale for p in pts], marker="o",
                                label=label)
                if col == "pod.throughput":
                    c0, t0 = pts[0]
                    ax.plot([p[0] for p in pts], [t0 * p[0] / c0 for p in pts], linestyle="--",
                            color=line.get_color(), alpha=0.5,
                            label="linear" if gi == 0 else None)
                if col == "pod.step_seconds":
                    for extra, style in (("pod.comm_seconds", ":"), ("pod.exposed_comm_seconds", "-.")):
                        ep = sorted((r["pod.chips"], r[extra]) for r in rs
                                    if _num(r.get(extra)) and r[extra] > 0)
                        if ep:
                            ax.plot([p[0] for p in ep], [p[1] * 1e3 for p in ep], linestyle=style,
                                    color=line.get_color(),
                                    label=extra[4:].replace("_seconds", "") if gi == 0 else None)
            log2_axis(ax, [r["pod.chips"] for r in rows])
            if logy:
                ax.set_yscale("log")
            if col == "pod.scaling_efficiency":
                ax.set_ylim(0, 105)
            ax.set_xlabel("chips")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Pod scaling")
        fig.tight_layout()
        self.save(fig, "scaling")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="plot.py", description="Figures from a sweep results table.",
                                 epilog="docs/sweeps.md shows each figure.")
    ap.add_argument("results", help="results table (.csv or .sqlite) written by scripts/sweep.py")
    ap.add_argument("--kind", default="all", choices=KINDS + ("all",))
    ap.add_argument("--out", help="directory for the figures (default: plots/ next to the table)")
    ap.add_argument("--format", default="png", choices=("png", "svg"))
    ap.add_argument("--x", help="column on the x axis of utilization/cycles "
                    "(default: the swept array size, else the first numeric swept setting)")
    ap.add_argument("--series", help="comma-separated columns that make one line each "
                    "(default: the other swept settings)")
    ap.add_argument("--where", action="append", metavar="KEY=VALUE",
                    help="only rows with this value (repeatable)")
    ap.add_argument("--point", action="append", metavar="HASH",
                    help="points (hash prefixes) for the per-layer stall figures (repeatable)")
    ap.add_argument("--intensity", choices=("ops", "macs"), default="ops",
                    help="roofline x axis: ops (2 per MAC) or MACs per off-chip byte")
    ap.add_argument("--layers", choices=("auto", "on", "off"), default="auto",
                    help="roofline: one dot per layer (auto: when at most 8 points)")
    ap.add_argument("--dpi", type=int, default=120)
    args = ap.parse_args(argv)
    if not os.path.exists(args.results):
        fail(f"{args.results}: results table: expected an existing file, found none")
    try:
        rows = table.open_table(args.results).rows()
    except table.TableError as e:
        fail(str(e))
    except Exception as e:  # unreadable CSV or database
        fail(f"{args.results}: results table: expected a table written by sweep.py, found {e}")
    results_dir = os.path.dirname(os.path.abspath(args.results))
    args.out = args.out or os.path.join(results_dir, "plots")
    plt.rcParams["svg.hashsalt"] = "tpusim"
    p = Plotter(args, rows, results_dir)
    kinds = KINDS if args.kind == "all" else (args.kind,)
    status = 0
    for kind in kinds:
        try:
            getattr(p, kind)()
        except PlotError as e:
            if args.kind == "all":
                print(f"{kind}: skipped: {e}")
            else:
                print(f"{PROG}: error: {args.results}: {kind}: {e}", file=sys.stderr)
                status = 2
    for path in p.written:
        print(f"wrote {path}")
    if not p.written and status == 0:
        print(f"{PROG}: error: {args.results}: no figure could be drawn", file=sys.stderr)
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())

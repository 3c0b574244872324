"""Runs one point with `tpusim run` and turns its run directory into one results row."""

import json
import os
import re
import signal
import subprocess
import threading
import time

import yaml

# Columns every row has, in this order; the point's settings and the metrics follow.
LEAD_COLUMNS = ["hash", "index", "status", "exit_code", "label"]
TAIL_COLUMNS = ["error", "run_dir", "command", "point"]
# Metrics first in the table when present (the rest follow in report order).
PREFERRED_METRICS = [
    "total_cycles", "seconds", "utilization", "achieved_tops", "macs", "array_macs",
    "throughput_samples_per_s",
    "stall.array_active", "stall.useful_macs", "stall.unused_macs", "stall.weight_stall",
    "stall.weight_shift", "stall.non_matrix", "stall.raw_stall", "stall.input_stall",
    "memory.hbm_read_bytes", "memory.hbm_write_bytes", "memory.hbm_achieved_gbps",
    "memory.hbm_busy_fraction", "memory.ub_peak_bytes", "memory.offchip_footprint_bytes",
    "pod.chips", "pod.topology", "pod.step_seconds", "pod.throughput", "pod.tflops",
    "pod.fraction_of_peak", "pod.comm_seconds", "pod.exposed_comm_seconds",
    "pod.scaling_efficiency",
    "arch.name", "arch.fingerprint", "arch.clock_hz", "arch.peak_ops_per_cycle",
    "arch.peak_macs_per_cycle", "arch.cores", "arch.mxus",
    "config.mxu.rows", "config.mxu.cols", "config.mxu.count", "config.unified_buffer.bytes",
    "config.memory.bandwidth_gbps",
    "workload.name", "workload.dtype", "workload.batch", "workload.mode",
]
STATUS_BY_EXIT = {0: "ok", 1: "failed", 2: "bad_input"}
# report.json sections flattened into `prefix.field` columns (scalars only).
SECTIONS = {"arch": "arch", "workload": "workload", "stall_breakdown": "stall",
            "memory": "memory", "pod": "pod"}
SKIP_TOP = {"schema_version", "layers", "units", "instructions", "outputs", "stuck"}


def _scalar(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _flatten(prefix, d, out):
    for k, v in d.items():
        if isinstance(v, dict):
            _flatten(f"{prefix}{k}.", v, out)
        else:
            out[f"{prefix}{k}"] = _scalar(v)


def metrics(run_dir):
    """Key figures of a finished run: report.json's scalars and sections, the layer count,
    and the resolved architecture as config.* columns (config.resolved.yaml)."""
    with open(os.path.join(run_dir, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    out = {}
    for k, v in report.items():
        if k in SKIP_TOP:
            continue
        if k in SECTIONS and isinstance(v, dict):
            for sk, sv in v.items():
                if isinstance(sv, dict):
                    _flatten(f"{SECTIONS[k]}.{sk}.", sv, out)
                else:
                    out[f"{SECTIONS[k]}.{sk}"] = _scalar(sv)
        elif not isinstance(v, (dict, list)):
            out[k] = v
    out["layers"] = len(report.get("layers") or [])
    cfg = os.path.join(run_dir, "config.resolved.yaml")
    if os.path.exists(cfg):
        with open(cfg, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if isinstance(doc, dict):
                    _flatten("pod_config." if "dims" in doc else "config.", doc, out)
    return out


def order_columns(names, point_columns=()):
    """Lead columns, the point's settings, preferred metrics, other metrics, tail columns."""
    names = list(names)
    lead = [c for c in LEAD_COLUMNS if c in names] + [c for c in point_columns if c in names]
    pref = [c for c in PREFERRED_METRICS if c in names and c not in lead]
    rest = [c for c in names if c not in lead and c not in pref and c not in TAIL_COLUMNS]
    return lead + pref + rest + [c for c in TAIL_COLUMNS if c in names]


def _error_text(stderr, code):
    text = stderr.strip()
    if len(text) > 2000:
        text = "..." + text[-2000:]
    if not text:
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"
    return text


class Runner:
    """Starts points as child processes; stop() kills every running one (for Ctrl-C)."""

    def __init__(self, tpusim, out_dir, timeout=None):
        self.tpusim, self.out_dir, self.timeout = tpusim, out_dir, timeout
        self._procs = set()
        self._lock = threading.Lock()
        self.stopping = False

    def stop(self):
        self.stopping = True
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self, point, results_dir):
        """Runs the point; returns (row, wall_seconds). The row is None when stopped."""
        run_dir = os.path.join(self.out_dir, "points", point.hash)
        os.makedirs(run_dir, exist_ok=True)
        args = point.args(self.tpusim, run_dir)
        with open(os.path.join(run_dir, "point.json"), "w", encoding="utf-8") as f:
            json.dump({"hash": point.hash, "index": point.index, "label": point.label,
                       "options": point.options, "command": args}, f, indent=1, sort_keys=True)
            f.write("\n")
        for stale in ("report.json", "layers.csv"):
            if os.path.exists(os.path.join(run_dir, stale)):
                os.unlink(os.path.join(run_dir, stale))
        t0 = time.monotonic()
        env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
        with open(os.path.join(run_dir, "stdout.txt"), "w") as out, \
                open(os.path.join(run_dir, "stderr.txt"), "w+") as err:
            if self.stopping:
                return None, 0.0
            try:
                proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
            except OSError as e:
                code, timed_out = None, False
                err.write(f"could not start {self.tpusim}: {e.strerror}\n")
            else:
                with self._lock:
                    self._procs.add(proc)
                timed_out = False
                try:
                    code = proc.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    code = proc.wait()
                finally:
                    with self._lock:
                        self._procs.discard(proc)
            err.seek(0)
            stderr = err.read()
        wall = time.monotonic() - t0
        if self.stopping:
            return None, wall
        rel = os.path.relpath(run_dir, results_dir)
        row = {"hash": point.hash, "index": point.index, "label": point.label,
               "exit_code": code, "error": None}
        row.update(point.columns)
        if timed_out:
            row["status"], row["error"] = "timeout", f"no result after {self.timeout} s"
        elif code is None:
            row["status"], row["error"] = "crashed", stderr.strip()
        else:
            row["status"] = STATUS_BY_EXIT.get(code, "crashed")
            if code != 0:
                row["error"] = _error_text(stderr, code)
        if row["status"] == "ok":
            try:
                row.update(metrics(run_dir))
            except (OSError, ValueError, yaml.YAMLError) as e:
                row["status"], row["error"] = "crashed", f"exit 0 but no usable report: {e}"
        if row["status"] != "ok" and os.path.exists(os.path.join(run_dir, "report.json")):
            try:
                row.update(metrics(run_dir))
            except (OSError, ValueError, yaml.YAMLError):
                pass
        row["run_dir"] = rel if not rel.startswith("..") else os.path.abspath(run_dir)
        row["command"] = " ".join(_shell_quote(a) for a in args)
        row["point"] = json.dumps(point.options, sort_keys=True, separators=(",", ":"))
        return row, wall


_SAFE = re.compile(r"^[A-Za-z0-9_./=:,+@%-]+$")


def _shell_quote(s):
    return s if _SAFE.match(s) else "'" + s.replace("'", "'\"'\"'") + "'"

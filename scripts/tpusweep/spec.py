"""Sweep files: loading with line numbers, validation, expansion into points, and hashing.

A point is a dict of `tpusim run` options (option name without `--` -> value), plus `set`
(architecture overrides, key -> value) and `flags` (extra arguments passed as written).
Everything except `set` and `flags` maps generically onto `--name value`, so a new
`tpusim run` option needs no change here.
"""

import difflib
import hashlib
import itertools
import json
import os
import re

import yaml

TOP_KEYS = {
    "name": "a name for the sweep (default: the file name without .yaml)",
    "description": "free text",
    "base": "options every point shares",
    "grid": "option -> list of values; every combination is a point",
    "points": "a list of option mappings, each one point",
    "seeds": "a list of integers; every point runs once per seed (--seed N)",
    "slurm": "extra #SBATCH options for --slurm (option -> value)",
}
FILE_OPTIONS = ("arch", "pod", "workload")
HASH_VERSION = "tpusim-sweep-point-1"


class SweepError(Exception):
    """Bad sweep input: names the file, the place, what was expected and what was found."""

    def __init__(self, file, where, expected, found, line=None):
        self.file, self.where, self.expected, self.found, self.line = file, where, expected, found, line
        loc = f"{file}:{line}" if line else file
        super().__init__(f"{loc}: {where}: expected {expected}, found {found}")


def _describe(v):
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the string '{v}'"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "a mapping" if v else "an empty mapping"
    return type(v).__name__


MAX_NODES = 200000  # YAML nodes a sweep file may hold, aliases counted at every use
MAX_DEPTH = 32  # nesting of mappings and lists
MAX_POINTS = 100000  # points one sweep file may expand into


def _lines(node, path, lines, budget):
    """Records the 1-based line of every key path in a composed YAML node tree. `budget` is a
    one-element list counting down the nodes still allowed, so that aliases that repeat a
    subtree many times (a "billion laughs" file) are refused before they are expanded."""
    budget[0] -= 1
    if budget[0] < 0:
        raise SweepError("", "file", f"at most {MAX_NODES} YAML nodes (aliases counted at "
                         "every use)", "more", node.start_mark.line + 1)
    if len(path) > MAX_DEPTH:
        raise SweepError("", "file", f"mappings and lists nested at most {MAX_DEPTH} deep",
                         "deeper nesting", node.start_mark.line + 1)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys = set()
        for k, v in node.value:
            key = str(k.value)
            if key in keys:
                raise SweepError("", ".".join(path + (key,)), "each key once", "it twice",
                                 k.start_mark.line + 1)
            keys.add(key)
            _lines(v, path + (key,), lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (str(i),), lines, budget)


def _deep_flow_line(text):
    """The first line where flow collections ([ and {) nest deeper than MAX_DEPTH, for files
    too deep for the YAML composer to return a position; None if none is found that way.
    Quoted scalars and comments are skipped (a rough scan: it only has to find a line)."""
    depth = 0
    for number, line in enumerate(text.split("\n"), 1):
        quote = None
        for i, ch in enumerate(line):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
                break
            elif ch in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    return number
            elif ch in "]}":
                depth = max(0, depth - 1)
    return None


def load_yaml(path):
    """Returns (data, lines) where lines maps a key path tuple to its 1-based line."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise SweepError(path, "file", "a regular sweep YAML file",
                         "a directory" if os.path.isdir(path) else "a device, pipe or socket")
    try:
        with open(path, "rb") as f:
            raw = f.read((16 << 20) + 1)
    except OSError as e:
        raise SweepError(path, "file", "a readable sweep YAML file", (e.strerror or str(e)).lower())
    if len(raw) > 16 << 20:
        raise SweepError(path, "file", "a sweep file of at most 16 MiB", "a larger file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise SweepError(path, "file", "UTF-8 text", f"the byte 0x{raw[e.start]:02x}", line)
    if "\0" in text:
        raise SweepError(path, "file", "text", "a NUL byte", text[:text.index("\0")].count("\n") + 1)
    lines = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, lines
        _lines(node, (), lines, [MAX_NODES])
        return yaml.safe_load(text), lines
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        problem = problem[len("found "):] if problem.startswith("found ") else problem
        problem = problem[len("but found "):] if problem.startswith("but found ") else problem
        if isinstance(e, yaml.composer.ComposerError) and "another document" in problem:
            problem = "a second document (---); a sweep file holds one"
        raise SweepError(path, "file", "valid YAML", problem, mark.line + 1 if mark else None)
    except RecursionError:
        raise SweepError(path, "file", f"mappings and lists nested at most {MAX_DEPTH} deep",
                         "deeper nesting", _deep_flow_line(text))
    except SweepError as e:
        raise SweepError(path, e.where, e.expected, e.found, e.line)


def _is_scalar(v):
    return isinstance(v, (str, int, float, bool))


def _one_line(v):
    return not isinstance(v, str) or not any(ord(c) < 32 or ord(c) == 127 for c in v)


def _set_value_ok(v):
    """A scalar or list of scalars on one line (a control character would reach argv)."""
    return (_is_scalar(v) and _one_line(v)) or (
        isinstance(v, list) and all(_is_scalar(x) and _one_line(x) for x in v))


class Sweep:
    """A validated sweep: its name, file, the expanded points and per-point metadata."""

    def __init__(self, path, name, description, points, slurm, columns, varying):
        self.path, self.name, self.description = path, name, description
        self.points = points  # list of Point, in expansion order
        self.slurm = slurm
        self.point_column_names = columns  # every setting column, in first-seen order
        self.varying = varying  # the setting columns whose values differ between points

    def find(self, key):
        """A point by 0-based index or by (a unique prefix of) its hash."""
        if re.fullmatch(r"[0-9]+", key):
            i = int(key)
            if i >= len(self.points):
                raise SweepError(self.path, "--run-point",
                                 f"an index in [0, {len(self.points) - 1}] or a point hash",
                                 f"'{key}'")
            return self.points[i]
        hits = [p for p in self.points if p.hash.startswith(key)]
        if len(hits) != 1:
            raise SweepError(self.path, "--run-point", "an index or the hash of one point",
                             f"'{key}', which matches {len(hits)} points")
        return hits[0]


class Point:
    def __init__(self, index, options):
        self.index = index
        self.options = options
        self.hash = point_hash(options)
        self.columns = point_columns(options)
        self.label = ""

    def args(self, tpusim, out_dir):
        return [tpusim, "run"] + option_args(self.options) + ["--out", out_dir]


def _format(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ",".join(_format(x) for x in v) + "]"
    return str(v)


def option_args(options):
    """The `tpusim run` arguments of a point, in a stable order."""
    args = []
    for name in sorted(options):
        v = options[name]
        if name == "set":
            for k in sorted(v):
                args += ["--set", f"{k}={_format(v[k])}"]
        elif name == "flags":
            args += list(v)
        elif isinstance(v, dict):
            for k in sorted(v):
                args += [f"--{name}", f"{k}={_format(v[k])}"]
        elif v is True:
            args.append(f"--{name}")
        elif v is False or v is None:
            continue
        else:
            args += [f"--{name}", _format(v)]
    return args


def canonical(options):
    """Drops options that produce no arguments, so `x: false` and no `x` hash alike."""
    out = {}
    for k, v in options.items():
        if v is None or v is False or (isinstance(v, (dict, list)) and not v):
            continue
        out[k] = v
    return out


def point_hash(options):
    """12 hex digits of SHA-256 over the canonical JSON of the resolved point."""
    text = json.dumps([HASH_VERSION, canonical(options)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def point_columns(options):
    """The point's settings as table columns: `set.KEY` for overrides, the option name else."""
    cols = {}
    for name, v in canonical(options).items():
        if name == "set":
            for k, x in v.items():
                cols[f"set.{k}"] = _format(x) if isinstance(x, list) else x
        elif name == "flags":
            cols["flags"] = " ".join(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                cols[f"{name}.{k}"] = _format(x) if isinstance(x, list) else x
        else:
            cols[name] = int(v) if isinstance(v, bool) else v
    return cols


def _origin_line(lines, origin, *key):
    """The line of option `key` (a name, or "set", KEY) as set by `origin` (base, points[i],
    grid), else the line of that part of the file."""
    root = ("points", origin[len("points["):-1]) if origin.startswith("points[") else (origin,)
    for n in range(len(key), -1, -1):
        if root + key[:n] in lines:
            return lines[root + key[:n]]
    return None


def _merge(into, more, origin, seen, file, lines):
    """Adds `more`'s options to `into`; `seen` maps each key to the part that set it."""
    for name, v in more.items():
        if name in into and isinstance(into[name], dict) != isinstance(v, dict):
            raise SweepError(file, f"{origin}: {name}", "the same kind of value everywhere the "
                             "option is set (key -> value mapping or a single value)",
                             f"{_describe(v)} here and {_describe(into[name])} before",
                             _origin_line(lines, origin, name))
        if name in ("set",) or isinstance(v, dict):
            into.setdefault(name, {})
            seen[name] = origin  # the last part to add keys (for messages)
            for k, x in v.items():
                key = f"{name}.{k}"
                if key in seen and seen[key] != "base":
                    raise SweepError(file, f"{origin}: {key}", "each key set by one of points/grid",
                                     f"it also set by {seen[key]}",
                                     _origin_line(lines, origin, name, str(k)))
                seen[key] = origin
                into[name][k] = x
        elif name == "flags":
            into.setdefault("flags", [])
            into["flags"] += [f for f in v if f not in into["flags"]]
            for f in v:  # an option given as a flag is placed where its flags are
                if isinstance(f, str) and f.startswith("--"):
                    seen.setdefault(f[2:].split("=", 1)[0], origin)
        else:
            if name in seen and seen[name] != "base":
                raise SweepError(file, f"{origin}: {name}", "each key set by one of points/grid",
                                 f"it also set by {seen[name]}", _origin_line(lines, origin, name))
            seen[name] = origin
            into[name] = v


def _check_set_key(name, key, where, file, line, arch_keys):
    """`set` keys must be architecture keys (when the schema is known)."""
    if name == "set" and arch_keys is not None and key not in arch_keys:
        near = difflib.get_close_matches(key, arch_keys, n=1)
        raise SweepError(file, where, "an architecture key (docs/config.md)",
                         f"'{key}'" + (f" (did you mean '{near[0]}'?)" if near else ""), line)


def _option_info(options, name):
    """What `tpusim run --help` says of an option: {"type": TEXT|INT|FLOAT|None (a flag),
    "needs": [...], "excludes": [...]}, or None when only the names (or nothing) are known."""
    return options.get(name) if isinstance(options, dict) else None


def _check_value(name, v, where, file, line, options):
    """A single value of option `name` against the type its --help gives."""
    info = _option_info(options, name)
    if info is None or v is None:
        return
    if info.get("repeatable"):
        raise SweepError(file, where, f"a mapping of key -> value (one --{name} KEY=VALUE each)",
                         _describe(v), line)
    typ = info.get("type")
    if isinstance(v, str) and typ in ("INT", "FLOAT"):  # '8', 1e3 (YAML 1.1 reads it as text)
        try:
            v = int(v) if typ == "INT" else float(v)
        except ValueError:
            pass
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if typ is None and not isinstance(v, bool):
        raise SweepError(file, where, f"true or false (--{name} is a flag)", _describe(v), line)
    if typ == "INT" and not (isinstance(v, int) and not isinstance(v, bool)):
        raise SweepError(file, where, f"an integer for --{name}", _describe(v), line)
    if typ == "FLOAT" and not number:
        raise SweepError(file, where, f"a number for --{name}", _describe(v), line)
    if typ == "TEXT" and isinstance(v, bool):
        raise SweepError(file, where, f"a value for --{name}", _describe(v), line)
    if not _one_line(v):
        raise SweepError(file, where, "a value without control characters",
                         repr(v)[:60], line)


def _check_flags(flags, where, file, line, options):
    """Extra arguments: each --name must be one of `tpusim run`'s options."""
    if not isinstance(options, (set, dict, frozenset)):
        return
    for f in flags:
        if f.startswith("--"):
            n = f[2:].split("=", 1)[0]
            if n not in options or n in ("out", "help"):
                raise SweepError(file, where, "`tpusim run` options (other than --out)",
                                 f"'{f}'", line)
        elif f.startswith("-"):  # -h would make every point print the help and "succeed"
            raise SweepError(file, where, "`tpusim run` long options (--name)", f"'{f}'", line)


def _check_options(opts, where, file, lines, known):
    """known: (tpusim run's options, architecture keys), each None when not known."""
    options, arch_keys = known
    if not isinstance(opts, dict):
        raise SweepError(file, ".".join(where), "a mapping of tpusim run options",
                         _describe(opts), lines.get(where))
    for name, v in opts.items():
        if not isinstance(name, str):
            raise SweepError(file, ".".join(where), "option names (strings)", _describe(name),
                             lines.get(where))
        w = where + (name,)
        line = lines.get(w)
        if options is not None and name not in ("flags",) and name not in options:
            raise SweepError(file, ".".join(w), "a `tpusim run` option (" +
                             ", ".join(sorted(set(options) - {"out"})) + ") or flags", f"'{name}'", line)
        if name in ("out", "help"):
            raise SweepError(file, ".".join(w), "an option sweep.py does not set itself",
                             f"'{name}' (sweep.py chooses each point's --out)", line)
        if name == "flags":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise SweepError(file, ".".join(w), "a list of strings (extra arguments)",
                                 _describe(v), line)
            _check_flags(v, ".".join(w), file, line, options)
        elif name == "set" and not isinstance(v, dict):
            raise SweepError(file, ".".join(w), "a mapping of architecture key -> value",
                             _describe(v), line)
        elif isinstance(v, dict):
            info = _option_info(options, name)
            if info is not None and not info.get("repeatable"):
                raise SweepError(file, ".".join(w), f"a single value for --{name} (only repeatable "
                                 "options such as set take key -> value mappings)", _describe(v), line)
            for k, x in v.items():
                if not isinstance(k, str) or not k or "=" in k:
                    raise SweepError(file, ".".join(w), "keys that are names (strings without '=')",
                                     _describe(k), line)
                _check_set_key(name, k, ".".join(w + (k,)), file, lines.get(w + (k,)), arch_keys)
                if not _set_value_ok(x):
                    raise SweepError(file, ".".join(w + (k,)), "a scalar or a list of scalars, on one line",
                                     _describe(x), lines.get(w + (k,)))
        elif not (_is_scalar(v) or v is None):
            raise SweepError(file, ".".join(w), f"a scalar value for --{name}", _describe(v), line)
        else:
            _check_value(name, v, ".".join(w), file, line, options)
            _check_file(name, v, ".".join(w), file, line)


def _check_file(name, v, where, file, line):
    """arch, pod and workload name files that must exist (relative to the current directory)."""
    if name in FILE_OPTIONS and v is not None and not (isinstance(v, str) and os.path.isfile(v)):
        if not isinstance(v, str):
            found = _describe(v)
        elif os.path.isdir(v):
            found = f"'{v}', a directory"
        elif os.path.exists(v):
            found = f"'{v}', which is not a regular file"
        else:
            found = f"'{v}', which does not exist in {os.getcwd()}"
        raise SweepError(file, where, "an existing file (relative paths are from the current "
                         "directory)", found, line)


def _grid_axes(grid, file, lines, known):
    """Returns a list of axes, each a list of option fragments ({name: v} or {set: {k: v}})."""
    if not isinstance(grid, dict) or not grid:
        raise SweepError(file, "grid", "a mapping of option -> list of values", _describe(grid),
                         lines.get(("grid",)))
    axes = []
    for name, values in grid.items():
        if not isinstance(name, str):
            raise SweepError(file, "grid", "option names (strings)", _describe(name),
                             lines.get(("grid",)))
        w = ("grid", name)
        if name == "set" or (isinstance(values, dict)):
            if not isinstance(values, dict) or not values:
                raise SweepError(file, ".".join(w), "a mapping of key -> list of values",
                                 _describe(values), lines.get(w))
            _check_options({name: {"_": 0}}, ("grid",), file, lines, (known[0], None))
            for k, xs in values.items():
                if not isinstance(k, str) or not k or "=" in k:
                    raise SweepError(file, ".".join(w), "keys that are names (strings without '=')",
                                     _describe(k), lines.get(w))
                _check_set_key(name, k, f"grid.{name}.{k}", file, lines.get(w + (k,)), known[1])
                if not isinstance(xs, list) or not xs:
                    raise SweepError(file, f"grid.{name}.{k}", "a non-empty list of values",
                                     _describe(xs), lines.get(w + (k,)))
                for i, x in enumerate(xs):
                    if not _set_value_ok(x):
                        raise SweepError(file, f"grid.{name}.{k}[{i}]", "a scalar or a list of scalars, on one line",
                                         _describe(x), lines.get(w + (k, str(i))))
                axes.append([{name: {k: x}} for x in xs])
            continue
        if not isinstance(values, list) or not values:
            raise SweepError(file, ".".join(w), "a non-empty list of values", _describe(values),
                             lines.get(w))
        _check_options({name: [] if name == "flags" else None}, ("grid",), file, lines, known)
        for i, x in enumerate(values):
            ok = (isinstance(x, list) and all(isinstance(f, str) for f in x) if name == "flags"
                  else _is_scalar(x) or x is None)
            if not ok:
                raise SweepError(file, f"grid.{name}[{i}]",
                                 "a list of strings" if name == "flags" else "a scalar value",
                                 _describe(x), lines.get(w + (str(i),)))
            if name == "flags":
                _check_flags(x, f"grid.{name}[{i}]", file, lines.get(w + (str(i),)), known[0])
            else:
                _check_value(name, x, f"grid.{name}[{i}]", file, lines.get(w + (str(i),)), known[0])
            _check_file(name, x, f"grid.{name}[{i}]", file, lines.get(w + (str(i),)))
        axes.append([{name: x} for x in values])
    return axes


def _axis_names(grid):
    """The grid's axes in _grid_axes order, named as in the file (set.KEY for mappings)."""
    names = []
    for name, values in (grid or {}).items():
        if isinstance(values, dict):
            names += [f"{name}.{k}" for k in values]
        else:
            names.append(str(name))
    return names


def _check_combination(opts, options, file, where, seen, lines):
    """The `Needs:` and `Excludes:` of `tpusim run --help`, over a resolved point's options
    (extra flags included), so that e.g. pod-set without pod stops the sweep, not each run.
    `seen` (option -> the part that set it) gives the line: the option that needs another,
    or the later of two that exclude each other."""
    if not isinstance(options, dict):
        return

    def line(n):
        return _origin_line(lines, seen[n], n) if n in seen else None

    given = {n for n, v in canonical(opts).items() if n != "flags"}
    given |= {f[2:].split("=", 1)[0] for f in opts.get("flags", []) if f.startswith("--")}
    for n in sorted(given):
        info = options.get(n) or {}
        for other in info.get("needs", []):
            if other not in given:
                raise SweepError(file, where, f"{other} with {n} (tpusim run --{n} needs --{other})",
                                 f"{n} without {other}", line(n))
        for other in info.get("excludes", []):
            if other in given:
                at = [x for x in (line(n), line(other)) if x]
                raise SweepError(file, where, f"{n} and {other} not together (tpusim run "
                                 "refuses the pair)", "both", max(at) if at else None)


def load(path, known_options=None, arch_keys=None):
    """Loads, validates and expands a sweep file. known_options: `tpusim run`'s long options
    (without --), a set of names or a dict name -> {"type", "needs", "excludes"} as sweep.py
    reads them from --help; arch_keys: the architecture's keys; None accepts any name."""
    known = (known_options, arch_keys)
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise SweepError(path, "file", "a mapping with base, grid and/or points", _describe(data), 1)
    for k in data:
        if k not in TOP_KEYS:
            raise SweepError(path, str(k), "one of " + ", ".join(TOP_KEYS), f"'{k}'",
                             lines.get((str(k),)))
    name = data.get("name", os.path.splitext(os.path.basename(path))[0])
    if (not isinstance(name, str) or not name or "/" in name or name in (".", "..")
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise SweepError(path, "name", "a non-empty string without '/' or control characters "
                         "(it names a directory)", repr(name) if isinstance(name, str)
                         else _describe(name), lines.get(("name",)))
    base = data.get("base", {})
    _check_options(base, ("base",), path, lines, known)
    if "grid" not in data and "points" not in data and not base:
        raise SweepError(path, "file", "base, grid or points", "none of them")

    point_entries = [({}, "base")]
    if "points" in data:
        pts = data["points"]
        if not isinstance(pts, list) or not pts:
            raise SweepError(path, "points", "a non-empty list of option mappings", _describe(pts),
                             lines.get(("points",)))
        point_entries = []
        for i, p in enumerate(pts):
            _check_options(p, ("points", str(i)), path, lines, known)
            point_entries.append((p, f"points[{i}]"))
    axes = _grid_axes(data["grid"], path, lines, known) if "grid" in data else []

    seeds = data.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds:
            raise SweepError(path, "seeds", "a non-empty list of integers", _describe(seeds),
                             lines.get(("seeds",)))
        for i, x in enumerate(seeds):
            if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x <= 1 << 62:
                raise SweepError(path, f"seeds[{i}]", "an integer in [0, 2^62]", _describe(x),
                                 lines.get(("seeds", str(i))))
        if len(set(seeds)) != len(seeds):
            raise SweepError(path, "seeds", "distinct seeds", "a seed repeated", lines.get(("seeds",)))

    slurm = data.get("slurm", {})
    if not isinstance(slurm, dict):
        raise SweepError(path, "slurm", "a mapping of sbatch option -> value", _describe(slurm),
                         lines.get(("slurm",)))
    for k, v in slurm.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", str(k)):
            raise SweepError(path, "slurm", "sbatch long option names (letters, digits, '-')",
                             repr(str(k))[:60], lines.get(("slurm", str(k))) or lines.get(("slurm",)))
        if not _is_scalar(v) or any(ord(c) < 32 or ord(c) == 127 for c in str(v)):
            raise SweepError(path, f"slurm.{k}", "a scalar value on one line (no control characters)",
                             _describe(v) if not _is_scalar(v) else repr(str(v))[:60],
                             lines.get(("slurm", str(k))))

    count = len(point_entries) * len(seeds if seeds is not None else [None])
    for axis in axes:
        count *= len(axis)
    if count > MAX_POINTS:
        raise SweepError(path, "grid" if axes else "points", f"a sweep of at most {MAX_POINTS} "
                         "points (split it into several files)",
                         f"{count} points (" + " x ".join(
                             [f"{len(a)} {n}" for a, n in zip(axes, _axis_names(data.get("grid")))]
                             + ([f"{len(point_entries)} points"] if "points" in data else [])
                             + ([f"{len(seeds)} seeds"] if seeds is not None else [])) + ")",
                         lines.get(("grid",) if axes else ("points",)))

    points, by_hash = [], {}
    for entry, origin in point_entries:
        for combo in itertools.product(*axes):
            for seed in (seeds if seeds is not None else [None]):
                opts, seen = {}, {}
                _merge(opts, json.loads(json.dumps(base)), "base", seen, path, lines)
                _merge(opts, entry, origin, seen, path, lines)
                for frag in combo:
                    _merge(opts, frag, "grid", seen, path, lines)
                if seed is not None:
                    if "seed" in seen:
                        raise SweepError(path, "seeds", "seed set only by seeds",
                                         f"seed also set by {seen['seed']}", lines.get(("seeds",)))
                    opts["seed"] = seed
                p = Point(len(points), canonical(opts))
                where = f"point {len(points)}" + (f" ({origin})" if origin != "base" else "")
                if not p.options.get("arch") or not p.options.get("workload"):
                    raise SweepError(path, where, "arch and workload (in base, points or grid)",
                                     "a point without " + ("arch" if not p.options.get("arch") else "workload"),
                                     _origin_line(lines, origin))
                _check_combination(p.options, known[0], path, where, seen, lines)
                if p.hash in by_hash:
                    at = (("points", origin[len("points["):-1]) if origin.startswith("points[")
                          else ("grid",) if axes else ("seeds",))
                    raise SweepError(path, where, "distinct points",
                                     f"the same settings as point {by_hash[p.hash]}", lines.get(at))
                by_hash[p.hash] = p.index
                points.append(p)

    varying = []
    all_cols = []
    for p in points:
        for c in p.columns:
            if c not in all_cols:
                all_cols.append(c)
    for c in all_cols:
        if len({json.dumps(p.columns.get(c), sort_keys=True) for p in points}) > 1:
            varying.append(c)
    for p in points:
        parts = []
        for c in varying:
            v = p.columns.get(c)
            if c in FILE_OPTIONS and isinstance(v, str):
                v = os.path.splitext(os.path.basename(v))[0]
            parts.append(f"{c[4:] if c.startswith('set.') else c}={'-' if v is None else v}")
        p.label = " ".join(parts) if parts else "(single point)"
    return Sweep(path, name, data.get("description", ""), points, slurm, all_cols, varying)

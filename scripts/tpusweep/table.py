"""The results table: one row per point, keyed by the point's hash, in CSV or SQLite.

Both formats take the same rows (dicts of column -> scalar) and are safe to write from many
processes at once: CSV under a POSIX record lock (fcntl.lockf, which also works on NFS) on
`FILE.lock`, SQLite inside `BEGIN IMMEDIATE` transactions. Columns are added as new ones
appear; writing a row whose hash is already there replaces that row.
"""

import contextlib
import csv
import fcntl
import os
import sqlite3
import tempfile

SQLITE_EXTENSIONS = (".sqlite", ".sqlite3", ".db")
CSV_EXTENSIONS = (".csv",)


class TableError(Exception):
    pass


def open_table(path):
    """A CsvTable or SqliteTable chosen by the file's extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext in CSV_EXTENSIONS:
        return CsvTable(path)
    if ext in SQLITE_EXTENSIONS:
        return SqliteTable(path)
    raise TableError(f"{path}: results file: expected a name ending in "
                     f"{', '.join(CSV_EXTENSIONS + SQLITE_EXTENSIONS)}, found '{ext or 'no extension'}'")


def _cell(v):
    """A value as stored: booleans as 0/1, None as missing."""
    if isinstance(v, bool):
        return int(v)
    return v


def parse_cell(s):
    """A CSV cell back to int, float or str ('' is None)."""
    if s is None or s == "":
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


class CsvTable:
    def __init__(self, path):
        self.path = path

    @contextlib.contextmanager
    def _lock(self, exclusive):
        """Writers create FILE.lock; readers lock it only when it exists, so reading a
        table never writes next to it (writers replace the file atomically)."""
        if not exclusive and not os.path.exists(self.path + ".lock"):
            yield
            return
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        with open(self.path + ".lock", "a+" if exclusive else "r") as f:
            fcntl.lockf(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)

    def _bad(self, line, expected, found):
        return TableError(f"{self.path}:{line}: results table: expected {expected}, found {found}")

    def _read(self):
        """(header, rows), after checking the file is a table this module wrote: a header
        naming `hash` once and every column once, and rows of exactly the header's cells."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return [], []
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:
                r = csv.reader(f, strict=True)
                header = next(r, [])
                if "hash" not in header or len(set(header)) != len(header):
                    dup = sorted({c for c in header if header.count(c) > 1})
                    raise self._bad(1, "a header naming each column once, hash among them",
                                    f"the column '{dup[0]}' twice" if dup else "no hash column")
                rows = []
                for line in r:
                    if not line:
                        continue
                    if len(line) != len(header):
                        raise self._bad(r.line_num, f"{len(header)} cells (one per header column)",
                                        f"{len(line)}")
                    row = dict(zip(header, line))
                    if not row["hash"]:
                        raise self._bad(r.line_num, "a point hash in the hash column", "none")
                    rows.append(row)
        except UnicodeDecodeError as e:
            raise TableError(f"{self.path}: results table: expected UTF-8 CSV text, found the "
                             f"byte 0x{e.object[e.start]:02x} at offset {e.start}") from None
        except csv.Error as e:
            raise TableError(f"{self.path}: results table: expected CSV, found {e}") from None
        return header, rows

    def rows(self):
        """Every row, cells parsed to numbers where they are numbers."""
        if not os.path.exists(self.path):
            return []
        with self._lock(False):
            _, rows = self._read()
        return [{k: parse_cell(v) for k, v in r.items()} for r in rows]

    def hashes(self):
        """hash -> status of every row."""
        return {r.get("hash"): r.get("status") for r in self.rows()}

    def put(self, row, order=None):
        """Appends the row (replacing a row with the same hash). When the row brings new
        columns the file is rewritten with the header order(all columns)."""
        row = {k: _cell(v) for k, v in row.items()}
        with self._lock(True):
            header, rows = self._read()
            want = list(header) + [c for c in row if c not in header]
            if want != header and order is not None:
                want = order(want)
            replace = any(r.get("hash") == row["hash"] for r in rows)
            if want == header and not replace:
                with open(self.path, "a", newline="", encoding="utf-8") as f:
                    csv.writer(f, lineterminator="\n").writerow(
                        ["" if row.get(c) is None else row[c] for c in header])
                    f.flush()
                    os.fsync(f.fileno())
                return
            rows = [r for r in rows if r.get("hash") != row["hash"]] + [row]
            d = os.path.dirname(os.path.abspath(self.path))
            fd, tmp = tempfile.mkstemp(prefix=".results.", dir=d)
            try:
                with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                    w = csv.writer(f, lineterminator="\n")
                    w.writerow(want)
                    for r in rows:
                        w.writerow(["" if r.get(c) is None else r[c] for c in want])
                    f.flush()
                    os.fsync(f.fileno())
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise


class SqliteTable:
    TABLE = "results"

    def __init__(self, path):
        self.path = path

    def _connect(self):
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 120000")
        return db

    def _columns(self, db):
        return [r[1] for r in db.execute(f'PRAGMA table_info("{self.TABLE}")')]

    def rows(self):
        if not os.path.exists(self.path):
            return []
        db = self._connect()
        try:
            columns = self._columns(db)
            if not columns:
                return []
            kind = db.execute("SELECT type FROM sqlite_master WHERE name = ?", (self.TABLE,)).fetchone()
            if kind and kind[0] != "table":
                raise TableError(f"{self.path}: results table: expected '{self.TABLE}' to be a "
                                 f"table, found a {kind[0]}")
            if "hash" not in columns:
                raise TableError(f"{self.path}: results table: expected a table '{self.TABLE}' "
                                 "with a hash column, found one without")
            bad = db.execute(f'SELECT rowid FROM "{self.TABLE}" WHERE typeof("hash") != \'text\' '
                             'OR "hash" = \'\' LIMIT 1').fetchone()
            if bad:
                raise TableError(f"{self.path}: results table: expected a point hash (text) in "
                                 f"every row, found row {bad[0]} without one")
            cur = db.execute(f'SELECT * FROM "{self.TABLE}" ORDER BY rowid')
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
        finally:
            db.close()

    def hashes(self):
        return {r.get("hash"): r.get("status") for r in self.rows()}

    def put(self, row, order=None):
        row = {k: _cell(v) for k, v in row.items()}
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f'CREATE TABLE IF NOT EXISTS "{self.TABLE}" ("hash" TEXT PRIMARY KEY)')
                have = self._columns(db)
                for c in (order(list(row)) if order else list(row)):
                    if c not in have:
                        db.execute(f'ALTER TABLE "{self.TABLE}" ADD COLUMN "{_quote(c)}"')
                        have.append(c)
                names = list(row)
                db.execute(
                    f'INSERT OR REPLACE INTO "{self.TABLE}" ('
                    + ",".join(f'"{_quote(c)}"' for c in names) + ") VALUES ("
                    + ",".join("?" for _ in names) + ")", [row[c] for c in names])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()


def _quote(name):
    return name.replace('"', '""')

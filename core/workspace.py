"""The workspace: one folder that holds every dataset, run, model and scored file, plus the
SQLite registry that lists them.

``./workspace`` unless ``OPINIONLAB_HOME`` names another folder. Files are written under a
temporary name and renamed into place, so a crash never leaves a half-written file; a
registry row is added only after its files exist and removed before they are deleted, so
the registry never points at nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import ConfigError, WorkspaceError
from core.i18n import Message, msg

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    created_by TEXT,
    rows INTEGER NOT NULL,
    card TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    dataset TEXT,
    name TEXT,
    dataset_id TEXT,
    created_at REAL NOT NULL,
    created_by TEXT,
    status TEXT NOT NULL,
    info TEXT NOT NULL DEFAULT '{}',
    search_id TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    created_by TEXT,
    status TEXT NOT NULL,
    position REAL NOT NULL,
    pid INTEGER,
    target TEXT,
    config_path TEXT,
    error TEXT,
    info TEXT NOT NULL DEFAULT '{}',
    lane TEXT NOT NULL DEFAULT 'long'
);
"""

# The registry's layout version (SQLite's user_version). 0: runs.name held the dataset's name and
# jobs had no lane. 2: runs.dataset holds the dataset, runs.name a name the user gave (NULL: the
# readable name is made from the run's settings), jobs.lane says which queue a job waits in.
# 3: runs.search_id names the hyperparameter search a run is a trial of (NULL: none).
# 4: jobs.run_id is renamed jobs.target (a job works on a run, a scoring output, a monitor, a search).
SCHEMA_VERSION = 4

# Busy timeout for SQLite, in milliseconds: another process holding a write lock is waited
# for this long before the registry reports itself locked.
BUSY_TIMEOUT_MS = 10_000

# A name a person types: letters (any script), digits, space, dot, dash, underscore.
_NAME_RE = re.compile(r"^[\w][\w .\-]{0,63}$", re.UNICODE)


def home() -> Path:
    """The workspace folder, created if missing."""
    path = Path(os.environ.get("OPINIONLAB_HOME", "workspace")).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError("workspace.err.cannot_create", path=str(path), reason=exc.strerror) from exc
    return path


def new_id(prefix: str) -> str:
    """A generated id such as ``ds_3f9a1c2b7d10``; ids, never user names, become paths."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def check_name(name: str, what: str | Message = "name") -> str:
    """Return a cleaned user-typed name or raise ConfigError saying which characters are allowed.

    ``what`` says what the name is for, best as a message (``msg("dataset.what_name")``)."""
    what = msg("workspace.what_name") if what == "name" else what
    cleaned = (name or "").strip()
    if not cleaned:
        raise ConfigError("workspace.err.empty_name", what=what)
    if not _NAME_RE.match(cleaned) or ".." in cleaned:
        raise ConfigError("workspace.err.bad_name", what=what, name=cleaned)
    return cleaned


def inside(base: Path, *parts: str) -> Path:
    """Join parts under base and refuse any result that escapes base."""
    base = base.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ConfigError("workspace.err.outside", path="/".join(parts))
    return path


def disk_error(path: Path, exc: OSError) -> WorkspaceError:
    reason = msg("workspace.disk_full") if exc.errno == 28 else (exc.strerror or str(exc))
    return WorkspaceError("workspace.err.write", file=path.name, reason=reason)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file and a rename, so readers see old or new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise disk_error(path, exc) from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final`` that becomes ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(final, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Registry:
    """The SQLite registry of datasets, runs and jobs (WAL mode, safe across processes)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else home()
        self.path = self.root / "registry.sqlite"
        with self.connect(transaction=False) as db:
            db.executescript(SCHEMA)
            current = db.execute("PRAGMA user_version").fetchone()[0]
        if current < SCHEMA_VERSION:
            with self.connect() as db:  # one process upgrades; the others wait, then find it done
                _upgrade(db)

    @contextlib.contextmanager
    def connect(self, transaction: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection inside a transaction; committed on success, rolled back on error."""
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise WorkspaceError("workspace.err.registry_open", path=str(self.path), detail=str(exc)) from exc
        db.row_factory = sqlite3.Row
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if not transaction:
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WorkspaceError("workspace.err.locked", seconds=BUSY_TIMEOUT_MS // 1000) from exc
            if "disk" in str(exc) or "full" in str(exc):
                raise WorkspaceError("workspace.err.disk_full") from exc
            raise
        finally:
            db.close()

    # Datasets -------------------------------------------------------------------------
    def add_dataset(self, ds_id: str, name: str, rows: int, card: dict, created_by: str | None) -> None:
        try:
            with self.connect() as db:
                db.execute(
                    "INSERT INTO datasets (id, name, created_at, created_by, rows, card) VALUES (?,?,?,?,?,?)",
                    (ds_id, name, time.time(), created_by, rows, json.dumps(card, ensure_ascii=False, default=str)),
                )
        except sqlite3.IntegrityError as exc:
            raise ConfigError("dataset.err.exists", name=name) from exc

    def datasets(self) -> list[dict]:
        with self.connect(transaction=False) as db:  # reads take no write lock
            rows = db.execute("SELECT * FROM datasets ORDER BY created_at DESC").fetchall()
        return [_dataset_row(r) for r in rows]

    def dataset(self, name_or_id: str) -> dict | None:
        with self.connect(transaction=False) as db:  # reads take no write lock
            row = db.execute(
                "SELECT * FROM datasets WHERE name = ? OR id = ?", (name_or_id, name_or_id)
            ).fetchone()
        return _dataset_row(row) if row else None

    def remove_dataset(self, ds_id: str) -> None:
        with self.connect() as db:
            db.execute("DELETE FROM datasets WHERE id = ?", (ds_id,))

    # Runs -----------------------------------------------------------------------------
    def add_run(self, run_id: str, dataset: str, dataset_id: str | None, created_by: str | None, info: dict,
                name: str | None = None, search_id: str | None = None) -> None:
        with self.connect() as db:
            db.execute(
                "INSERT INTO runs (id, dataset, name, dataset_id, created_at, created_by, status, info, search_id) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, dataset, name, dataset_id, time.time(), created_by, "queued", json.dumps(info, default=str),
                 search_id),
            )

    def rename_run(self, run_id: str, name: str | None) -> bool:
        """Give a run a name of the user's (None: back to the name made from its settings)."""
        with self.connect() as db:
            return db.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id)).rowcount > 0

    def update_run(self, run_id: str, status: str, info: dict | None = None) -> None:
        with self.connect() as db:
            row = db.execute("SELECT info FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return
            merged = {**json.loads(row["info"]), **(info or {})}
            db.execute("UPDATE runs SET status = ?, info = ? WHERE id = ?",
                       (status, json.dumps(merged, default=str), run_id))

    def runs(self) -> list[dict]:
        with self.connect(transaction=False) as db:  # reads take no write lock
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [_info_row(r) for r in rows]

    def search_runs(self, search_id: str) -> list[dict]:
        """The runs that are trials of the search ``search_id``, oldest first."""
        with self.connect(transaction=False) as db:  # reads take no write lock
            rows = db.execute("SELECT * FROM runs WHERE search_id = ? ORDER BY created_at", (search_id,)).fetchall()
        return [_info_row(r) for r in rows]

    def run(self, run_id: str) -> dict | None:
        with self.connect(transaction=False) as db:  # reads take no write lock
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _info_row(row) if row else None

    def remove_run(self, run_id: str) -> None:
        with self.connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            db.execute("DELETE FROM jobs WHERE target = ?", (run_id,))

    def remove_jobs(self, target: str) -> None:
        """Forget the jobs that worked on ``target`` (a scoring output, a monitor ...)."""
        with self.connect() as db:
            db.execute("DELETE FROM jobs WHERE target = ?", (target,))

    # Jobs -----------------------------------------------------------------------------
    def add_job(self, job_id: str, kind: str, target: str, config_path: str, created_by: str | None,
                lane: str = "long") -> None:
        with self.connect() as db:
            position = db.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM jobs").fetchone()[0]
            db.execute(
                "INSERT INTO jobs (id, kind, created_at, created_by, status, position, target, config_path, lane) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (job_id, kind, time.time(), created_by, "queued", position, target, config_path, lane),
            )

    def claim_job(self, lane: str, slots: int) -> dict | None:
        """Mark the first queued job of ``lane`` running if the lane has a free slot; return it.

        Counting and claiming happen in one write transaction, so two schedulers (a finishing
        worker and a page) never start more jobs than the lane has slots. The job's ``info.slot``
        is the lowest free slot number: on a GPU machine, the GPU it runs on."""
        with self.connect() as db:
            running = [json.loads(r["info"] or "{}").get("slot") for r in db.execute(
                "SELECT info FROM jobs WHERE status = 'running' AND lane = ?", (lane,))]
            if len(running) >= slots:
                return None
            row = db.execute("SELECT * FROM jobs WHERE status = 'queued' AND lane = ? ORDER BY position LIMIT 1",
                             (lane,)).fetchone()
            if row is None:
                return None
            job = _info_row(row)
            job["info"]["slot"] = min(set(range(slots)) - set(running))
            job.update(status="running", pid=None, error=None)
            db.execute("UPDATE jobs SET status = 'running', pid = NULL, error = NULL, info = ? WHERE id = ?",
                       (json.dumps(job["info"], default=str), job["id"]))
        return job

    def place_in_line(self, job_id: str) -> int | None:
        """1 for the queued job that starts next in its lane, 2 for the one after...; None if not queued."""
        with self.connect(transaction=False) as db:  # reads take no write lock
            row = db.execute(
                "SELECT this.status, (SELECT COUNT(*) FROM jobs AS other WHERE other.status = 'queued' "
                "AND other.lane = this.lane AND other.position < this.position) FROM jobs AS this WHERE this.id = ?",
                (job_id,)).fetchone()
        return row[1] + 1 if row and row[0] == "queued" else None

    def jobs(self, statuses: tuple[str, ...] | None = None) -> list[dict]:
        with self.connect(transaction=False) as db:  # reads take no write lock
            if statuses:
                marks = ",".join("?" * len(statuses))
                rows = db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY position", statuses).fetchall()
            else:
                rows = db.execute("SELECT * FROM jobs ORDER BY created_at DESC").fetchall()
        return [_info_row(r) for r in rows]

    def job(self, job_id: str) -> dict | None:
        with self.connect(transaction=False) as db:  # reads take no write lock
            row = db.execute("SELECT * FROM jobs WHERE id = ? OR target = ?", (job_id, job_id)).fetchone()
        return _info_row(row) if row else None

    def update_job(self, job_id: str, expect: tuple[str, ...] | None = None, **values) -> bool:
        """Set columns of a job; with ``expect``, only while its status is one of those (atomic)."""
        if "info" in values:
            values["info"] = json.dumps(values["info"], default=str)
        sets = ", ".join(f"{k} = ?" for k in values)
        params = [*values.values(), job_id]
        sql = f"UPDATE jobs SET {sets} WHERE id = ?"
        if expect:
            sql += f" AND status IN ({','.join('?' * len(expect))})"
            params += list(expect)
        with self.connect() as db:
            return db.execute(sql, params).rowcount > 0

    def counts(self) -> dict[str, int]:
        with self.connect(transaction=False) as db:  # reads take no write lock
            return {
                "datasets": db.execute("SELECT COUNT(*) FROM datasets").fetchone()[0],
                "runs": db.execute("SELECT COUNT(*) FROM runs").fetchone()[0],
                "running_jobs": db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
                ).fetchone()[0],
            }


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a registry written by an older version to ``SCHEMA_VERSION`` in place (inside the
    caller's write transaction; each step checks first, so running it twice changes nothing)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    run_columns = {r["name"] for r in db.execute("PRAGMA table_info(runs)")}
    if "dataset" not in run_columns:  # runs.name held the dataset's name
        db.execute("ALTER TABLE runs RENAME COLUMN name TO dataset")
        db.execute("ALTER TABLE runs ADD COLUMN name TEXT")
    job_columns = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
    if "lane" not in job_columns:
        db.execute("ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT 'long'")
        # baseline runs take seconds: the ones still waiting move to the quick lane
        db.execute("UPDATE jobs SET lane = 'quick' WHERE kind = 'train' AND run_id IN "  # before the rename below
                   "(SELECT id FROM runs WHERE json_extract(info, '$.method') = 'baseline')")
    if "search_id" not in {r["name"] for r in db.execute("PRAGMA table_info(runs)")}:
        db.execute("ALTER TABLE runs ADD COLUMN search_id TEXT")
    if "run_id" in {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}:
        # jobs work on runs, scoring outputs, monitors...: the column names what, not which table
        db.execute("ALTER TABLE jobs RENAME COLUMN run_id TO target")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _info_row(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["info"] = json.loads(out.get("info") or "{}")
    return out


def _dataset_row(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["card"] = json.loads(out["card"])
    return out

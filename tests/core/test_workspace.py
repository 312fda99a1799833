import sqlite3

import pytest

from core.errors import ConfigError, WorkspaceError
from core.workspace import Registry, atomic_write_bytes, check_name, home, inside, staging_dir


def test_home_follows_env(workspace):
    assert home() == workspace.resolve()
    assert workspace.is_dir()


def test_registry_uses_wal(workspace):
    Registry()
    db = sqlite3.connect(workspace / "registry.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("bad", ["../evil", "a/b", "..", "", "   ", "x" * 65, "/etc/passwd", "a\\b", ".hidden"])
def test_bad_names_refused(bad):
    with pytest.raises(ConfigError):
        check_name(bad)


@pytest.mark.parametrize("good", ["reviews", "评论数据 2026", "imdb_v2.1", "Q3-reviews"])
def test_good_names_accepted(good):
    assert check_name(good) == good


def test_inside_refuses_escape(tmp_path):
    assert inside(tmp_path, "a", "b") == (tmp_path / "a" / "b").resolve()
    with pytest.raises(ConfigError):
        inside(tmp_path, "..", "x")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", full)
    with pytest.raises(WorkspaceError, match="disk is full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_staging_dir_leaves_nothing_on_error(tmp_path):
    final = tmp_path / "ds"
    with pytest.raises(RuntimeError), staging_dir(final) as tmp:
        (tmp / "part").write_text("x")
        raise RuntimeError("crash half way")
    assert not final.exists() and list(tmp_path.iterdir()) == []


def test_locked_registry_gives_clear_error(workspace, monkeypatch):
    registry = Registry()
    monkeypatch.setattr("core.workspace.BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(workspace / "registry.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WorkspaceError, match="locked by another process"):
            registry.add_dataset("ds_x", "x", 1, {}, None)
    finally:
        holder.execute("ROLLBACK")
    assert registry.datasets() == []


HOLDER = r"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO datasets (id, name, rows, card, created_by, created_at) VALUES ('ds_other', 'other', 1, '{}', 'p2', 0)")
print("holding", flush=True)
sys.stdin.readline()  # hold the write lock until the test says so
db.execute("COMMIT")
print("committed", flush=True)
"""


def test_another_process_holding_a_write(workspace, monkeypatch):
    """Another process holds the write lock: reads go on (WAL), our write waits for the busy
    timeout and then fails with a clear message; once the lock is gone, writing works and the
    registry is intact."""
    import subprocess
    import sys

    registry = Registry()
    registry.add_dataset("ds_a", "a", 1, {}, None)
    monkeypatch.setattr("core.workspace.BUSY_TIMEOUT_MS", 300)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(workspace / "registry.sqlite")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert [d["name"] for d in registry.datasets()] == ["a"]  # readers are not blocked
        with pytest.raises(WorkspaceError, match="locked by another process"):
            registry.add_dataset("ds_b", "b", 1, {}, None)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    registry.add_dataset("ds_b", "b", 1, {}, None)
    assert sorted(d["name"] for d in registry.datasets()) == ["a", "b", "other"]
    check = sqlite3.connect(workspace / "registry.sqlite").execute("PRAGMA integrity_check").fetchone()
    assert check == ("ok",)

import pytest

from core.data import Table, prepare_dataset
from core.datasets import get_dataset, list_datasets, load_rows, remove_dataset, save_dataset
from core.errors import ConfigError, DataError, NotFoundError, WorkspaceError
from core.workspace import Registry
from tests.conftest import labelled_rows
from tests.core.test_data import table_of


def prepared():
    return prepare_dataset(table_of(labelled_rows(20)))


def test_save_list_load_remove(workspace):
    card = save_dataset(prepared(), "my reviews")
    assert card["rows"] == 40 and card["classes"] == {"negative": 20, "positive": 20}
    assert card["encoding"] == "utf-8" and card["columns"]["text"] == "text"
    assert (workspace / "datasets" / card["id"] / "data.parquet").exists()
    assert [c["name"] for c in list_datasets()] == ["my reviews"]
    rows = load_rows("my reviews")
    assert len(rows) == 40 and set(rows["split"]) == {"train", "validation", "test"}
    assert len(load_rows("my reviews", split="test")) == card["split_counts"]["test"]["negative"] * 2
    remove_dataset("my reviews")
    assert list_datasets() == [] and not (workspace / "datasets" / card["id"]).exists()


def test_duplicate_name_refused():
    save_dataset(prepared(), "x")
    with pytest.raises(DataError, match="already exists"):
        save_dataset(prepared(), "x")


def test_path_traversal_name_refused(workspace):
    with pytest.raises(ConfigError):
        save_dataset(prepared(), "../outside")
    assert not (workspace.parent / "outside").exists()


def test_blocked_dataset_is_not_saved(workspace):
    blocked = prepare_dataset(Table(table_of([(f"t{i}", "a") for i in range(5)]).frame, "x.csv", "csv"))
    with pytest.raises(DataError, match="block saving"):
        save_dataset(blocked, "blocked")
    assert list_datasets() == []


def test_unknown_dataset_lists_known_ones():
    save_dataset(prepared(), "alpha")
    with pytest.raises(NotFoundError, match="'alpha'"):
        get_dataset("beta")


def test_disk_full_while_saving_leaves_nothing_half_written(workspace, monkeypatch):
    save_dataset(prepared(), "before")

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pandas.DataFrame.to_parquet", full)
    with pytest.raises(WorkspaceError, match="disk is full"):
        save_dataset(prepared(), "after")
    assert [c["name"] for c in list_datasets()] == ["before"]
    assert len(list((workspace / "datasets").iterdir())) == 1
    assert len(load_rows("before")) == 40


def test_registry_failure_removes_the_written_folder(workspace, monkeypatch):
    def broken(*args, **kwargs):
        raise WorkspaceError("locked")

    monkeypatch.setattr(Registry, "add_dataset", broken)
    with pytest.raises(WorkspaceError):
        save_dataset(prepared(), "x")
    assert not any((workspace / "datasets").iterdir())


def test_card_keeps_messages_that_render_in_both_languages_and_old_cards_still_render(workspace):
    from core import i18n

    rows = [(f"good {i}", "positive") for i in range(40)] + [(f"bad {i}", "negative") for i in range(10)]
    card = save_dataset(prepare_dataset(table_of(rows)), "skewed")
    stored = get_dataset("skewed")["warnings"]
    assert stored == card["warnings"] and stored[0]["key"] == "data.warn.imbalanced"
    assert i18n.render(stored[0], "en").startswith("Classes are imbalanced: 'positive' has 4.0×")
    assert i18n.render(stored[0], "zh").startswith("类别不平衡：“positive”的行数是“negative”的 4.0 倍")
    assert i18n.render("Classes are imbalanced (an old card).", "zh") == "Classes are imbalanced (an old card)."


def test_a_refusal_names_its_problems_in_the_readers_language(workspace):
    blocked = prepare_dataset(Table(table_of([(f"t{i}", "a") for i in range(5)]).frame, "x.csv", "csv"))
    with pytest.raises(DataError) as caught:
        save_dataset(blocked, "blocked")
    assert caught.value.render("zh").startswith("数据集存在阻止保存的问题：列“label”中每一行的标签都相同（“a”）")

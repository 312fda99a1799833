from core.data import prepare_dataset
from core.datasets import save_dataset
from tests.conftest import labelled_rows
from tests.core.test_data import table_of


def test_home_empty_workspace(app):
    app.run()
    assert not app.exception
    assert app.title[0].value == "Opinion Lab"
    assert [m.label for m in app.metric] == ["Datasets", "Training runs", "Running jobs"]
    assert [m.value for m in app.metric] == ["0", "0", "0"]
    assert any("No datasets yet" in i.value for i in app.info)


def test_home_lists_datasets(app):
    save_dataset(prepare_dataset(table_of(labelled_rows(10))), "shop reviews")
    app.run()
    assert app.metric[0].value == "1"
    assert "shop reviews" in app.dataframe[0].value.iloc[:, 0].tolist()


def test_language_switch_changes_labels(app):
    app.run()
    app.sidebar.radio(key="lang").set_value("zh").run()
    assert not app.exception
    assert app.title[0].value == "舆情实验室"
    assert [m.label for m in app.metric] == ["数据集", "训练任务", "运行中的作业"]


def test_language_comes_from_the_url(app):
    app.query_params["lang"] = "zh"
    app.run()
    assert app.title[0].value == "舆情实验室"

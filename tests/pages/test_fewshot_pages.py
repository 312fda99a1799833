"""The Data and Train pages recommend few-shot training for small datasets, and say why."""

from tests.conftest import csv_bytes, labelled_rows
from tests.pages.conftest import open_page


def test_the_data_page_recommends_fewshot_for_a_small_dataset(app):
    open_page(app, "pages/data.py")
    app.file_uploader(key="upload").set_value(("small.csv", csv_bytes(labelled_rows(10)), "text/csv")).run()
    assert not app.exception
    advice = [i.value for i in app.info if "fewshot" in i.value]
    assert len(advice) == 1 and "fewer than 100 training examples" in advice[0] and "training pairs" in advice[0]


def test_the_train_page_recommends_fewshot_and_starts_it_with_its_own_settings(app, easy_dataset):
    open_page(app, "pages/train.py")
    assert any("Try the method 'fewshot'" in i.value for i in app.info)
    app.selectbox(key="train_method_en").set_value("fewshot").run()
    assert not app.exception
    assert not any("Try the method 'fewshot'" in i.value for i in app.info)
    command = app.code[0].value
    assert "--method fewshot" in command and "--epochs 1" in command and "--batch-size 16" in command


def test_the_train_page_says_it_in_chinese(app, easy_dataset):
    app.session_state["lang"] = "zh"
    open_page(app, "pages/train.py")
    assert any("建议先试试少样本方法" in i.value for i in app.info)


def test_the_train_page_says_plainly_what_a_method_does_not_do_like_full(app, easy_dataset):
    """fewshot (no early stopping, resume restarts), AdaLoRA (allocator restarts on resume) and the
    virtual-token methods (no ONNX export) each get one plain caption; full and lora none."""
    open_page(app, "pages/train.py")
    differs = lambda: [c.value for c in app.caption if c.value.startswith("What differs from full")]  # noqa: E731
    assert differs() == []
    for method, words in [("fewshot", "early stopping does not apply"), ("adalora", "importance scores start again"),
                          ("prompt", "no ONNX export"), ("lora", None)]:
        app.selectbox(key="train_method_en").set_value(method).run()
        assert not app.exception
        shown = differs()
        assert (len(shown) == 1 and words in shown[0]) if words else shown == []
    app.selectbox(key="train_method_en").set_value("fewshot").run()
    app.session_state["lang"] = "zh"
    app.run()  # the method is kept across the switch; its caption is in Chinese
    assert any(c.value.startswith("与完整微调的不同") and "提前停止" in c.value for c in app.caption)

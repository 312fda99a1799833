from core.workspace import Registry
from tests.core.test_scoring import tiny_run  # noqa: F401  (the fixture: a trained tiny BERT run)
from tests.pages.conftest import open_page


def export_view(app):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("export").run()
    assert not app.exception
    return app


def test_onnx_int8_export_shows_its_check_and_a_download(app, tiny_run):  # noqa: F811
    export_view(app)
    app.segmented_control(key="export_format_en").set_value("onnx-int8").run()
    app.button(key="export_start").click().run()
    assert not app.exception and not app.error
    assert any(f"{tiny_run}-onnx-int8" in s.value for s in app.success)
    assert any("test texts" in c.value and "same label on" in c.value for c in app.caption)
    assert (Registry().root / "exports" / f"{tiny_run}-onnx-int8" / "model.int8.onnx").is_file()
    assert app.get("download_button")
    app.segmented_control(key="export_format_en").set_value("hf-zip").run()  # another format: not exported yet
    assert not any(f"{tiny_run}-onnx-int8" in s.value for s in app.success)


def test_baseline_run_is_told_what_it_can_do_instead(app, baseline_run):
    export_view(app)
    assert any("TF-IDF baseline" in i.value and "python -m core score" in i.value for i in app.info)
    assert "export_start" not in [b.key for b in app.button]

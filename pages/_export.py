"""Results → Export: the run's model as ONNX, ONNX int8 or a Hugging Face zip, with its check.

An export of the embedded MiniLM takes 12-18 s on two busy CPU cores (measured: export, int8
quantisation and the check against PyTorch), under the ~30 s a person waits for behind a
spinner, so it runs in the script run rather than as a background job."""

from pathlib import Path

import streamlit as st

from core import portable
from core.runs import size_text
from pages._shared import keep_choice, render, show_error, t

CHOICES = {"onnx": ("onnx", None), "onnx-int8": ("onnx", "int8"), "hf-zip": ("hf-zip", None)}


def portable_model(run_id: str) -> None:
    st.subheader(t("export.title"))
    st.caption(t("export.intro"))
    try:
        portable.check_exportable(run_id)
    except Exception as exc:  # a baseline or zero-shot run: say what it can do instead
        st.info(render(exc), icon=":material/info:")
        return
    choice = keep_choice(st.segmented_control, t("export.format"), list(CHOICES), "export_format",
                         default="onnx", format_func=lambda c: t(f"export.format.{c}")) or "onnx"
    done_key = f"export_done_{run_id}_{choice}"
    if st.button(t("export.start"), key="export_start", type="primary"):
        with st.spinner(t("export.working")):
            try:
                st.session_state[done_key] = portable.export_run(run_id, *CHOICES[choice]).to_dict()
            except Exception as exc:  # a failed check says why; nothing was kept
                st.session_state.pop(done_key, None)
                show_error(exc)
    done = st.session_state.get(done_key)
    if done and Path(done["path"]).exists():
        show_export(done)


def show_export(done: dict) -> None:
    path = Path(done["path"])
    st.success(t("export.done", path=str(path), size=size_text(done["bytes"])), icon=":material/check_circle:")
    check = done["check"]
    if check:
        st.caption(t("export.check", texts=check["texts"], diff=f"{check['max_abs_diff']:.2g}",
                     agreement=f"{check['agreement']:.1%}"))
    else:
        st.caption(t("export.no_check"))
    st.download_button(t("export.download"), data=lambda: portable.archive_bytes(path),
                       file_name=path.name if path.is_file() else f"{path.name}.zip", mime="application/zip",
                       on_click="ignore", icon=":material/download:", key="export_download")

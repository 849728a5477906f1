"""The threshold form of the "Alerts & thresholds" page: create, edit, enable/disable, delete.

Changes run in widget callbacks, before the page is drawn, so the table above the form already
shows them. A refused threshold (`lake.thresholds.ThresholdError`) leaves the form as typed and
shows the reason under the field it names. Knows no SQL: the store is `lake.thresholds`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from lake import thresholds
from lake.thresholds import Threshold, ThresholdError

NEW = 0  # the "edit" choice that starts a new threshold
CUSTOM = "another quality score"  # the metric choice that takes its name from the text box
_P = "th:"  # prefix of this form's session keys
FIELDS = ("metric", "scope", "scope_id", "warning", "critical", "enabled")


def form(lake: Path) -> None:
    """The picker of the threshold to edit, its buttons and the form."""
    known = {t.id: t for t in thresholds.list_thresholds(lake) if t.id is not None}
    editing = st.session_state.get(_P + "editing")
    if editing is None or (editing != NEW and editing not in known):
        # First show (or the one edited was deleted elsewhere): a blank new threshold.
        st.session_state[_P + "editing"] = NEW
        _fill(None)
    editing = st.selectbox(
        "Threshold",
        [NEW, *known],
        format_func=lambda i: "New threshold" if i == NEW else _label(known[i]),
        key=_P + "editing",
        on_change=lambda: _fill(known.get(st.session_state[_P + "editing"])),
    )
    _notice()
    if editing != NEW:
        _buttons(lake, known[editing])
    with st.form("threshold", border=True):
        _fields(sorted({t.metric for t in known.values()} - set(thresholds.THRESHOLD_METRICS)))
        st.form_submit_button(
            "Save" if editing != NEW else "Create",
            type="primary",
            key=_P + "save",
            on_click=_save,
            args=(lake, None if editing == NEW else editing),
        )


def _label(t: Threshold) -> str:
    scope = "global" if t.scope == "global" else f"{t.scope} {t.scope_id}"
    state = "" if t.enabled else " (disabled)"
    return f"#{t.id} {t.metric}, {scope}: warning {t.warning}, critical {t.critical}{state}"


def _buttons(lake: Path, t: Threshold) -> None:
    toggle, delete, _ = st.columns([1, 1, 4])
    toggle.button(
        "Disable" if t.enabled else "Enable",
        key=_P + "toggle",
        on_click=_act,
        args=(thresholds.set_enabled, lake, t.id, not t.enabled),
    )
    delete.button("Delete", key=_P + "delete", on_click=_act, args=(_delete, lake, t.id))


def _fields(custom: list[str]) -> None:
    """The form's widgets; `custom` are the custom score names thresholds already use."""
    errors: dict[str, str] = st.session_state.get(_P + "errors", {})
    left, right = st.columns(2)
    left.selectbox("Metric", [*thresholds.THRESHOLD_METRICS, *custom, CUSTOM], key=_P + "metric")
    right.text_input(
        "Custom score name",
        key=_P + "custom",
        help=f"With metric '{CUSTOM}': the name of a quality score jobs send.",
    )
    _error(errors, "metric")
    left, right = st.columns(2)
    left.selectbox("Scope", thresholds.SCOPES, key=_P + "scope")
    right.text_input(
        "Workflow or worker id", key=_P + "scope_id", help="Empty for a global threshold."
    )
    _error(errors, "scope", "scope_id")
    left, right = st.columns(2)
    left.number_input("Warning level", value=None, format="%g", key=_P + "warning")
    right.number_input("Critical level", value=None, format="%g", key=_P + "critical")
    st.caption(
        "Time and VRAM metrics alert when high (vram_peak_pct in % of the GPU's memory, "
        "failure_rate 0..1); quality scores when low (0..1)."
    )
    _error(errors, "warning", "critical", "enabled", "id")
    st.checkbox("Enabled", key=_P + "enabled")


def _error(errors: dict[str, str], *fields: str) -> None:
    for field in fields:
        if field in errors:
            st.error(errors[field])


def _fill(t: Threshold | None) -> None:
    """Put `t` (or a blank new threshold) into the form's widgets."""
    t = t or Threshold(metric="vram_peak_pct")
    for field in FIELDS:
        value = getattr(t, field)
        st.session_state[_P + field] = "" if field == "scope_id" and value is None else value
    st.session_state[_P + "custom"] = ""
    st.session_state[_P + "errors"] = {}


def _save(lake: Path, id: int | None) -> None:
    s = st.session_state
    typed_in: dict[str, Any] = {f: s.get(_P + f) for f in FIELDS}
    if typed_in["metric"] == CUSTOM:
        typed_in["metric"] = s.get(_P + "custom", "")
    typed = Threshold(id, **typed_in)
    try:
        saved = thresholds.save_threshold(lake, typed)
    except ThresholdError as e:
        s[_P + "errors"] = {e.field: str(e)}
        return
    s[_P + "errors"] = {}
    s[_P + "notice"] = f"Saved {_label(saved)}."
    s[_P + "editing"] = saved.id
    _fill(saved)


def _act(action: Callable[..., Any], lake: Path, id: int, *args: Any) -> None:
    try:
        done = action(lake, id, *args)
    except ThresholdError as e:
        st.session_state[_P + "notice"] = f"Refused: {e}"
        return
    st.session_state[_P + "notice"] = done


def _delete(lake: Path, id: int) -> str:
    thresholds.delete_threshold(lake, id)
    st.session_state[_P + "editing"] = NEW
    _fill(None)
    return f"Deleted threshold #{id}."


def _notice() -> None:
    notice = st.session_state.pop(_P + "notice", None)
    if isinstance(notice, Threshold):
        notice = f"Threshold #{notice.id} {'enabled' if notice.enabled else 'disabled'}."
    if notice:
        (st.warning if notice.startswith("Refused") else st.success)(notice)

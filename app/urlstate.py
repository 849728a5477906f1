"""The view's state in the URL: widgets bound to query parameters, so a view can be shared.

The URL is read once, on a session's first run, into a store in `st.session_state`; a bound
widget takes its value from the store on every run and writes it back when the user changes it;
`publish` puts the store's values of the widgets this run showed into the URL (defaults left
out). The store outlives page switches, so each page keeps its choices. Knows no query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")

_STORE = "perflake_url"
_SHOWN = "perflake_url_shown"
_PREFIX = "url:"


def start() -> None:
    """Begin a run: on the session's first run, take the state from the URL."""
    if _STORE not in st.session_state:
        params = st.query_params
        st.session_state[_STORE] = {k: list(params.get_all(k)) for k in params}
    st.session_state[_SHOWN] = {}


def publish() -> None:
    """End a run: the URL holds the non-default values of the widgets this run showed."""
    store: dict[str, list[str]] = st.session_state.get(_STORE, {})
    shown: dict[str, list[str]] = st.session_state.get(_SHOWN, {})
    # An emptied list whose default is not empty is written as one blank value: `?name=`.
    wanted = {
        name: store.get(name) or [""]
        for name, default in shown.items()
        if store.get(name, []) != default
    }
    current = {k: list(st.query_params.get_all(k)) for k in st.query_params}
    if wanted != current:
        st.query_params.from_dict(wanted)


def selectbox(
    name: str,
    label: str,
    options: Sequence[T],
    default: T | None = None,
    format_func: Callable[[T], str] = str,
    container: Any = st,
    widget: str = "selectbox",
    **kwargs: Any,
) -> T:
    """A selectbox (or `widget="radio"`) bound to `?name=`; an unknown value in the URL falls
    back to the default."""
    if not options:
        raise ValueError(f"{name}: a selectbox needs options")
    by_text = {str(o): o for o in options}
    fallback = options[0] if default is None else default
    raw = _raw(name)
    value = by_text.get(raw[0], fallback) if raw else fallback
    show = {"selectbox": container.selectbox, "radio": container.radio}[widget]
    chosen: T = _bound(
        name, value, [str(fallback)], show, label, options, format_func=format_func, **kwargs
    )
    return chosen


def multiselect(
    name: str,
    label: str,
    options: Sequence[str],
    default: Sequence[str] = (),
    container: Any = st,
    **kwargs: Any,
) -> list[str]:
    """A multiselect bound to `?name=a&name=b`; values not among the options are dropped.

    Without the parameter in the URL it shows `default`; an emptied one stays empty.
    """
    known = set(options)
    fallback = [v for v in default if v in known]
    raw = _raw(name) if name in st.session_state[_STORE] else fallback
    value = [v for v in raw if v in known]
    chosen: list[str] = _bound(
        name, value, fallback, container.multiselect, label, options, **kwargs
    )
    return chosen


def text(name: str, label: str, default: str = "", container: Any = st, **kwargs: Any) -> str:
    """A text input bound to `?name=`."""
    raw = _raw(name)
    value = raw[0] if raw else default
    chosen: str = _bound(
        name, value, [default] if default else [], container.text_input, label, **kwargs
    )
    return chosen


def day(name: str, label: str, default: date, container: Any = st, **kwargs: Any) -> date:
    """A date input bound to `?name=YYYY-MM-DD`."""
    raw = _raw(name)
    try:
        value = date.fromisoformat(raw[0]) if raw else default
    except ValueError:
        value = default
    chosen: date = _bound(name, value, [default.isoformat()], container.date_input, label, **kwargs)
    return chosen


def _raw(name: str) -> list[str]:
    store: dict[str, list[str]] = st.session_state[_STORE]
    return store.get(name, [])


def _bound(
    name: str, value: Any, default: list[str], widget: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Show `widget` with `value`; the store follows the user's changes."""
    key = _PREFIX + name
    st.session_state[key] = value
    st.session_state[_STORE][name] = _texts(value)
    st.session_state[_SHOWN][name] = default
    return widget(*args, key=key, on_change=_changed, args=(name,), **kwargs)


def _changed(name: str) -> None:
    st.session_state[_STORE][name] = _texts(st.session_state[_PREFIX + name])


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, date):
        return [value.isoformat()]
    return [str(value)]

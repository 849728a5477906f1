"""How every page shows a frame: a table with days as days and instants in UTC, and its CSV.

Every table a page shows goes through `table`, so each one has its download button; knows no
query and no page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import streamlit as st


def table(
    frame: pl.DataFrame,
    name: str,
    columns: Mapping[str, Any] | None = None,
    height: int | None = None,
) -> None:
    """`frame` as a table with its CSV download; `columns` override a column's config."""
    dataframe(frame, columns, height)
    download(frame, name)


def section(title: str, caption: str, frame: pl.DataFrame, name: str) -> None:
    """A titled table with a caption and its CSV download."""
    st.markdown(f"**{title}**")
    st.caption(caption)
    table(frame, name)


def dataframe(
    frame: pl.DataFrame, columns: Mapping[str, Any] | None = None, height: int | None = None
) -> None:
    """The frame as a table: days as days, instants in UTC (as the lake keeps them)."""
    config: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            config[name] = st.column_config.DateColumn(format="YYYY-MM-DD")
        elif isinstance(dtype, pl.Datetime):
            config[name] = st.column_config.DatetimeColumn(
                format="YYYY-MM-DD HH:mm:ss [UTC]", timezone="UTC"
            )
    config |= columns or {}
    options: dict[str, Any] = {"height": height} if height else {}
    st.dataframe(frame, hide_index=True, column_config=config, **options)


def download(frame: pl.DataFrame, name: str, label: str = "Download CSV") -> None:
    """A button that downloads `frame` as `<name>.csv` (a header-only file when it is empty)."""
    st.download_button(
        label,
        csv(frame),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{name}",
        on_click="ignore",
    )


def csv(frame: pl.DataFrame) -> str:
    """The CSV a download button serves: a header line even for an empty frame; lists as
    "a; b" text (CSV has no nested values), everything else as Polars writes it."""
    nested = [n for n, t in frame.schema.items() if isinstance(t, pl.List)]
    if nested:
        frame = frame.with_columns(pl.col(n).list.join("; ") for n in nested)
    return frame.write_csv()

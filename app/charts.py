"""The app's Altair charts: time series that zoom to a brushed span, bars, histograms, scatters.

Each builder takes a query result and column names and returns a chart with tooltips; days are
shown as UTC days whatever the browser's time zone. Knows no query and no page.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import polars as pl
import streamlit as st

DAY_FORMAT = "%Y-%m-%d"
BAD = "#e45756"
GOOD = "#4c78a8"


Shown = alt.Chart | alt.LayerChart | alt.VConcatChart


def show(chart: Shown) -> None:
    """Render `chart` across the page's width."""
    st.altair_chart(chart, width="stretch")


def plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Days as `YYYY-MM-DD` text and instants as ISO text: Vega reads both as UTC."""
    return frame.with_columns(
        pl.col(n).dt.to_string("%Y-%m-%dT%H:%M:%SZ" if isinstance(t, pl.Datetime) else "%Y-%m-%d")
        for n, t in frame.schema.items()
        if t == pl.Date or isinstance(t, pl.Datetime)
    )


def day_x(
    field: str,
    zoom: alt.Parameter | None = None,
    title: str | None = "Day (UTC)",
    whole_days: bool = False,
) -> alt.X:
    """A UTC day axis on `field`; with `zoom`, its domain follows that brush; `whole_days` makes
    each mark (a bar) as wide as its day."""
    scale = alt.Scale(type="utc", domain=zoom) if zoom is not None else alt.Scale(type="utc")
    x = alt.X(f"{field}:T", title=title, scale=scale, axis=alt.Axis(format=DAY_FORMAT))
    return x.timeUnit("utcyearmonthdate") if whole_days else x


def day_tooltip(field: str, title: str = "Day (UTC)") -> alt.Tooltip:
    return alt.Tooltip(f"utcyearmonthdate({field}):T", title=title, format=DAY_FORMAT)


def zoomable(
    frame: pl.DataFrame, x: str, panels: Sequence[tuple[str, str]], mark: str = "bar"
) -> alt.VConcatChart:
    """One panel per (column, title) over the UTC days in `x`, above a strip of the first column:
    brushing the strip zooms every panel to the brushed days (double-click resets)."""
    data = plain(frame)
    zoom = alt.selection_interval(encodings=["x"], name="zoom")
    tooltip = [day_tooltip(x)] + [
        alt.Tooltip(f"{column}:Q", title=title, format=",.4~f") for column, title in panels
    ]
    charts = [
        _marks(alt.Chart(data), mark)
        .encode(
            x=day_x(x, zoom, title=None, whole_days=mark == "bar"),
            y=alt.Y(f"{column}:Q", title=title),
            tooltip=tooltip,
        )
        .properties(height=180, width="container")
        for column, title in panels
    ]
    first, title = panels[0]
    strip = (
        alt.Chart(data)
        .mark_area(opacity=0.5, interpolate="step-after")
        .encode(
            x=day_x(x),
            # Labels hidden but the same title: the strip's days line up with the panels'.
            y=alt.Y(f"{first}:Q", title=title, axis=alt.Axis(labels=False, ticks=False)),
            tooltip=tooltip,
        )
        .add_params(zoom)
        .properties(height=50, width="container", title=f"Drag here to zoom ({title})")
    )
    return _aligned(alt.vconcat(*charts, strip))


def series_with_average(
    frame: pl.DataFrame, x: str, value: str, average: str, title: str, color: str | None = None
) -> alt.VConcatChart:
    """`value` per period (points and line) with its moving average, zoomable by a brush.

    With `color` (a column), one line per value of that column, each with its average dashed.
    """
    data = plain(frame)
    zoom = alt.selection_interval(encodings=["x"], name="zoom")
    tooltip = [day_tooltip(x, "Period start (UTC)")]
    if color:
        tooltip.append(alt.Tooltip(f"{color}:N"))
    tooltip += [
        alt.Tooltip(f"{value}:Q", title=title, format=",.4~f"),
        alt.Tooltip(f"{average}:Q", title="Moving average", format=",.4~f"),
    ]
    # A legend beside a panel would push it past the page's width: legends go on top.
    hue = (
        alt.Color(f"{color}:N", title=None, legend=alt.Legend(orient="top", columns=6))
        if color
        else alt.value(GOOD)
    )
    # One chart with both lines (folded), not a layer: a layer in a vconcat overflows its width.
    names = {value: title, average: "moving average"}
    detail = (
        alt.Chart(data)
        .transform_fold([value, average], as_=["line", "y"])
        .transform_calculate(line=f"{names!r}[datum.line]")
        .mark_line(point=True, opacity=0.75)
        .encode(
            x=day_x(x, zoom, title=None),
            # Lines, not bars: the axis may start where the values do.
            y=alt.Y("y:Q", title=title, scale=alt.Scale(zero=False)),
            color=hue,
            strokeDash=alt.StrokeDash(
                "line:N",
                title=None,
                scale=alt.Scale(domain=list(names.values()), range=[[1, 0], [6, 3]]),
                legend=alt.Legend(orient="top"),
            ),
            detail=f"{color}:N" if color else alt.Undefined,
            tooltip=tooltip,
        )
        .properties(height=300, width="container")
    )
    strip = (
        alt.Chart(data)
        .mark_line(opacity=0.6)
        .encode(
            x=day_x(x, title=None),
            y=alt.Y(f"{value}:Q", title=title, axis=alt.Axis(labels=False, ticks=False)),
            color=hue,
        )
        .add_params(zoom)
        .properties(height=50, width="container", title="Drag here to zoom")
    )
    return _aligned(alt.vconcat(detail, strip))


def bars(
    frame: pl.DataFrame,
    category: str,
    value: str,
    title: str,
    tooltip: Sequence[alt.Tooltip] = (),
    flag: str | None = None,
    fmt: str = ",.4~f",
    baseline: float | None = None,
) -> alt.Chart:
    """Horizontal bars of `value` per `category`, largest first; `flag` (a bool column) in red.

    With `baseline`, bars start there (a dashed rule marks it) instead of at zero.
    """
    color = (
        alt.Color(
            f"{flag}:N",
            scale=alt.Scale(domain=[False, True], range=[GOOD, BAD]),
            legend=alt.Legend(title=flag.replace("_", " ")),
        )
        if flag
        else alt.value(GOOD)
    )
    start = {} if baseline is None else {"x2": alt.datum(baseline)}
    return (
        alt.Chart(plain(frame))
        .mark_bar()
        .encode(
            x=alt.X(f"{value}:Q", title=title, scale=alt.Scale(zero=baseline is None)),
            y=alt.Y(f"{category}:N", title=None, sort="-x", axis=alt.Axis(labelLimit=320)),
            **start,
            color=color,
            tooltip=[
                alt.Tooltip(f"{category}:N"),
                alt.Tooltip(f"{value}:Q", title=title, format=fmt),
                *tooltip,
            ],
        )
        .properties(height=alt.Step(22))
    )


def histogram(frame: pl.DataFrame, title: str, color: str = "workflow_id") -> alt.Chart:
    """Jobs per bin (`bin_start`..`bin_end`), stacked per `color` value."""
    return (
        alt.Chart(frame)
        .mark_bar(opacity=0.85)
        .encode(
            x=alt.X("bin_start:Q", title=title, bin="binned"),
            x2="bin_end:Q",
            y=alt.Y("sum(jobs):Q", title="Jobs", stack=True),
            color=alt.Color(f"{color}:N", title=None),
            tooltip=[
                alt.Tooltip(f"{color}:N"),
                alt.Tooltip("bin_start:Q", title="From", format=",.4~f"),
                alt.Tooltip("bin_end:Q", title="To", format=",.4~f"),
                alt.Tooltip("sum(jobs):Q", title="Jobs", format=","),
            ],
        )
        .properties(height=260)
    )


def scatter(frame: pl.DataFrame, x: str, y: str, x_title: str, y_title: str) -> alt.LayerChart:
    """One point per row of `x` against `y`, with a least-squares line."""
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False)),
    )
    points = base.mark_circle(size=24, opacity=0.45).encode(
        tooltip=[
            alt.Tooltip("job_id:N", title="Job"),
            alt.Tooltip(f"{x}:Q", title=x_title, format=",.4~f"),
            alt.Tooltip(f"{y}:Q", title=y_title, format=",.4~f"),
        ]
    )
    fit = base.transform_regression(x, y).mark_line(color=BAD)
    return (points + fit).properties(height=340)


def _aligned(chart: alt.VConcatChart) -> alt.VConcatChart:
    """Panels stacked with their plots' left edges lined up, small panel titles."""
    return chart.configure_axisY(minExtent=56).configure_title(fontSize=11, anchor="start")


def _marks(chart: alt.Chart, mark: str) -> alt.Chart:
    if mark == "bar":
        return chart.mark_bar()
    return chart.mark_line(point=True)


# Static charts: no selection or zoom, so they read the same in the app and in a PNG (the PDF
# report draws them through vl-convert).


def lines(
    frame: pl.DataFrame, x: str, value: str, title: str, color: str | None = None
) -> alt.Chart:
    """`value` over the UTC days in `x` as a line with points; with `color`, one line per value."""
    hue = alt.Color(f"{color}:N", title=None) if color else alt.value(GOOD)
    tooltip = [day_tooltip(x)] + ([alt.Tooltip(f"{color}:N")] if color else [])
    return (
        alt.Chart(plain(frame))
        .mark_line(point=True)
        .encode(
            x=day_x(x),
            y=alt.Y(f"{value}:Q", title=title),
            color=hue,
            tooltip=[*tooltip, alt.Tooltip(f"{value}:Q", title=title, format=",.4~f")],
        )
        .properties(height=260)
    )


def day_bars(
    frame: pl.DataFrame, x: str, value: str, title: str, color: str | None = None
) -> alt.Chart:
    """`value` per UTC day in `x`, one bar as wide as its day; with `color`, stacked per value."""
    hue = alt.Color(f"{color}:N", title=None) if color else alt.value(GOOD)
    tooltip = [day_tooltip(x)] + ([alt.Tooltip(f"{color}:N")] if color else [])
    return (
        alt.Chart(plain(frame))
        .mark_bar()
        .encode(
            x=day_x(x, whole_days=True),
            y=alt.Y(f"sum({value}):Q", title=title, stack=True),
            color=hue,
            tooltip=[*tooltip, alt.Tooltip(f"sum({value}):Q", title=title, format=",.4~f")],
        )
        .properties(height=260)
    )


def stacked_bars(
    frame: pl.DataFrame, category: str, value: str, color: str, title: str
) -> alt.Chart:
    """Horizontal bars of `value` per `category`, stacked per `color` value, largest total first."""
    return (
        alt.Chart(plain(frame))
        .mark_bar()
        .encode(
            x=alt.X(f"sum({value}):Q", title=title, stack=True),
            y=alt.Y(f"{category}:N", title=None, sort="-x", axis=alt.Axis(labelLimit=320)),
            color=alt.Color(f"{color}:N", title=None),
            tooltip=[
                alt.Tooltip(f"{category}:N"),
                alt.Tooltip(f"{color}:N"),
                alt.Tooltip(f"sum({value}):Q", title=title, format=",.4~f"),
            ],
        )
        .properties(height=alt.Step(22))
    )


def period_bars(
    frame: pl.DataFrame, x: str, value: str, title: str, color: str | None = None
) -> alt.Chart:
    """`value` per period, one bar per first day in `x` (periods longer than a day, in order);
    with `color`, stacked per value."""
    hue = alt.Color(f"{color}:N", title=None) if color else alt.value(GOOD)
    tooltip = [alt.Tooltip(f"{x}:N", title="Period start (UTC)")]
    tooltip += [alt.Tooltip(f"{color}:N")] if color else []
    return (
        alt.Chart(plain(frame))
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:O", title="Period start (UTC)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"sum({value}):Q", title=title, stack=True),
            color=hue,
            tooltip=[*tooltip, alt.Tooltip(f"sum({value}):Q", title=title, format=",.4~f")],
        )
        .properties(height=260)
    )

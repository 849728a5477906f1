"""The app's settings: built once per browser session from the arguments after streamlit's `--`
and the PERFLAKE_* variables, then kept in `st.session_state` for every page.

Knows no query and no page; pages ask `settings()` for the lake they show.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

#: How long a query result is reused: short, so new data shows on the next rerun.
CACHE_TTL_S = 10
DEFAULT_LAKE = "demo-lake"
_KEY = "perflake_settings"


@dataclass(frozen=True)
class AppSettings:
    """What every page needs to know: the lake folder it reads."""

    lake: Path


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> AppSettings:
    """Settings from `--lake DIR` (after streamlit's `--`), else PERFLAKE_LAKE, else demo-lake."""
    parser = argparse.ArgumentParser(
        prog="streamlit run app/streamlit_app.py --", add_help=False, allow_abbrev=False
    )
    parser.add_argument(
        "--lake",
        type=Path,
        default=Path(environ.get("PERFLAKE_LAKE", DEFAULT_LAKE)),
        help="lake folder (env PERFLAKE_LAKE, default demo-lake)",
    )
    # Under streamlit's AppTest sys.argv is the test runner's: ignore what is not ours.
    args, _ = parser.parse_known_args(list(argv))
    return AppSettings(lake=args.lake.expanduser().resolve())


def settings() -> AppSettings:
    """This session's settings, parsed on its first run."""
    if _KEY not in st.session_state:
        st.session_state[_KEY] = parse_settings(sys.argv[1:], os.environ)
    current: AppSettings = st.session_state[_KEY]
    return current

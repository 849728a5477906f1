"""Entry point of the Streamlit app: page config, this session's settings, the URL state and the
navigation.

Run as `streamlit run app/streamlit_app.py -- --lake DIR` (what `perflake app` does). Each page
is a script in `app/screens/`; this file only routes to them, and says so when the lake cannot be
read at all. (Not `pages/`: Streamlit would run a script there directly, without this file, when
a browser opens its URL first.)
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import state, urlstate
from app.empty import no_lake
from lake import LakeError, LakeNotFoundError

PAGES = Path(__file__).with_name("screens")

st.set_page_config(page_title="perflake", layout="wide")
lake = state.settings().lake
urlstate.start()

current = st.navigation(
    {
        "Analysis": [
            st.Page(PAGES / "overview.py", title="Overview", default=True),
            st.Page(PAGES / "workflows.py", title="Workflows"),
            st.Page(PAGES / "quality.py", title="Quality"),
            st.Page(PAGES / "compare.py", title="Compare"),
            st.Page(PAGES / "workers.py", title="Workers"),
        ],
        "Operations": [
            st.Page(PAGES / "alerts.py", title="Alerts & thresholds"),
            st.Page(PAGES / "reports.py", title="Reports"),
            st.Page(PAGES / "health.py", title="Ingest health"),
        ],
    }
)
try:
    current.run()
except LakeNotFoundError:
    no_lake(lake, "does not exist yet")
except LakeError as e:
    st.error("Cannot read the lake.")
    st.code(str(e), language=None)
urlstate.publish()

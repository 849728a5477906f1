"""Entry point of the Streamlit app: page config, this session's settings and the navigation.

Run as `streamlit run app/streamlit_app.py -- --lake DIR` (what `perflake app` does). Each page
lives in `app/pages/`; this file only routes to them.
"""

from __future__ import annotations

import streamlit as st

from app import state
from app.pages import health

st.set_page_config(page_title="perflake", layout="wide")
state.settings()

current = st.navigation(
    [st.Page(health.page, title="Ingest health", url_path="health", default=True)],
)
current.run()

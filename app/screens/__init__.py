"""The app's pages: one script per page, run by `st.navigation` on each rerun, that lays the page
out from `queries/` results. Pages hold no SQL and open no connection."""

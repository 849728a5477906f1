"""The app's pages: one module per page, each with a `page()` function that lays it out from
`queries/` results. Pages hold no SQL and open no connection."""

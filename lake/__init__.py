"""The Parquet lake: table declarations, layout, atomic writer, DuckDB views, retention, compaction.

Everything that knows a path or a schema lives here; nothing here imports streamlit or Kafka.
"""


class LakeError(Exception):
    """Base error of the lake package."""


class LakeNotFoundError(LakeError):
    """The lake folder does not exist (or is not a folder)."""


class QueryError(LakeError):
    """DuckDB refused or failed a query against the lake views."""

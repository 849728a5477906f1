"""The data dictionary of every lake table and view, rendered from the declarations in tables.py.

The README embeds this text; a test keeps the two identical.
"""

from __future__ import annotations

import pyarrow as pa

from lake.tables import TABLES

_TYPES = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.binary(): "blob",
}


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamptz (UTC)"
    if pa.types.is_map(t):
        return f"map({_type_name(t.key_type)}, {_type_name(t.item_type)})"
    return _TYPES[t]


def markdown() -> str:
    """One section per table/view: its grain, key, partition and a row per column."""
    parts = []
    for table in TABLES.values():
        parts.append(f"#### `{table.name}`\n")
        parts.append(
            f"{table.doc} Key: `{', '.join(table.key)}`. Partitioned by the UTC date of "
            f"`{table.partition_by}` into `{table.name}/date=YYYY-MM-DD/`.\n"
        )
        if table.sample_of:
            parts.append(f"Columns: those of `{table.sample_of}`, above, and `date`.\n")
            continue
        parts.append("| column | type | null | meaning |\n|---|---|---|---|")
        for field in table.schema:
            null = "yes" if field.nullable else "no"
            parts.append(
                f"| `{field.name}` | {_type_name(field.type)} | {null} | {table.doc_of(field.name)} |"
            )
        parts.append(
            "| `date` | date | no | Partition date (from the folder name); filter on it to prune files. |\n"
        )
    return "\n".join(parts)

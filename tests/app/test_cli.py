"""The `perflake` command line: help everywhere, bad settings refused at start-up by name, sql -c."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from app.cli import build_parser, main
from lake.tables import WORKER_SAMPLES
from lake.writer import LakeWriter
from tests.lake.test_writer_and_maintenance import samples

COMMANDS = [
    "ingest", "broker", "demo-events", "demo", "app", "sql", "query", "report", "schedule",
    "scheduler", "retention", "compact",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command):
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", command, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage: perflake" in out.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "--max-latency", "0"], "--max-latency: must be > 0, got 0"),
        (["ingest", "--keep-days", "zero"], "--keep-days: must be an integer, got 'zero'"),
        (["ingest", "--bootstrap-servers", "nohost"], "bootstrap_servers: must be host:port"),
        (
            ["ingest", "--kafka-option", "security_protocol=SASL_FOO"],
            "security_protocol: must be one of",
        ),
        (["ingest", "--kafka-option", "colour=blue"], "kafka: unknown option(s)"),
    ],
)
def test_bad_settings_fail_at_start_up_naming_the_setting(argv, message, tmp_path, capsys):
    try:
        code = main([*argv, "--lake", str(tmp_path)])
    except SystemExit as e:
        code = e.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_env_settings_are_checked_like_flags(monkeypatch, capsys):
    monkeypatch.setenv("PERFLAKE_MAX_RECORDS", "-3")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ingest"])
    assert "--max-records: must be >= 1, got -3" in capsys.readouterr().err


def test_sql_command_prints_csv_json_and_table(tmp_path, capsys):
    day = date(2026, 11, 20)
    LakeWriter(tmp_path).publish(WORKER_SAMPLES, day, samples(["b", "a"], day), "p.parquet")
    sql = "select event_id, state from worker_samples order by event_id"
    assert main(["sql", "--lake", str(tmp_path), "-c", sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out == "event_id,state\na,idle\nb,idle\n"
    assert main(["sql", "--lake", str(tmp_path), "-c", sql, "--format", "json"]) == 0
    assert '"event_id": "a"' in capsys.readouterr().out
    assert main(["sql", "--lake", str(tmp_path), "-c", sql]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "event_id  state",
        "--------  -----",
        "a         idle",
        "b         idle",
        "(2 rows)",
    ]


def test_sql_error_is_one_line(tmp_path, capsys):
    assert main(["sql", "--lake", str(tmp_path), "-c", "select nope from jobs"]) == 2
    assert "nope" in capsys.readouterr().err


def test_duckdb_cli_shell_reads_the_views(tmp_path):
    """The official shell (duckdb-cli 1.5.x) runs the init script and reads Parquet from DuckDB 2.0."""
    day = date(2026, 11, 20)
    LakeWriter(tmp_path).publish(WORKER_SAMPLES, day, samples(["a", "b", "c"], day), "p.parquet")
    from lake.views import init_script

    init = tmp_path / "_meta" / "views.sql"
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(init_script(tmp_path, relative=True))
    shell = sys.prefix + "/bin/duckdb"
    out = subprocess.run(
        [
            shell,
            "-init",
            str(init),
            "-csv",
            "-c",
            "select count(*) as n, min(date) as d from worker_samples",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-2:] == ["n,d", "3,2026-11-20"]

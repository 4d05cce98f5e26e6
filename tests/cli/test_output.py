"""What the command line prints: cell text as data, exact decimals in plain notation, safe CSV,
and the small refusals users met (an earlier set of generated files, --debug for a traceback)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from helpers import SEED, cli, cli_on_terminal, empty_warehouse

CELLS = (
    "SELECT '[w1]' AS tag, CAST(0 AS DECIMAL(38,12)) AS zero, '=HYPERLINK(\"http://x\",\"click\")' AS link, "
    "CAST(-1.5 AS DECIMAL(10,2)) AS credit, '-12.5' AS text_number, '@SUM(A1)' AS at"
)


def test_table_output_shows_cell_text_as_it_is(tmp_path: Path) -> None:
    shown = cli(empty_warehouse(tmp_path / "wh"), "query", CELLS)
    assert shown.returncode == 0, shown.stderr
    assert "[w1]" in shown.stdout and "0.000000000000" in shown.stdout and "0E-12" not in shown.stdout


def test_csv_output_neutralises_formulas_and_keeps_numbers(tmp_path: Path) -> None:
    shown = cli(empty_warehouse(tmp_path / "wh"), "query", CELLS, "--format", "csv")
    row = next(csv.DictReader(io.StringIO(shown.stdout)))
    assert row == {
        "tag": "[w1]",
        "zero": "0.000000000000",
        "link": '\'=HYPERLINK("http://x","click")',
        "credit": "-1.50",
        "text_number": "-12.5",
        "at": "'@SUM(A1)",
    }


def test_json_output_keeps_exact_plain_decimals(tmp_path: Path) -> None:
    shown = cli(empty_warehouse(tmp_path / "wh"), "query", CELLS, "--format", "json")
    (row,) = json.loads(shown.stdout)
    assert row["zero"] == "0.000000000000" and row["credit"] == "-1.50"


def test_generate_refuses_to_reuse_a_folder_of_earlier_files(tmp_path: Path) -> None:
    out = tmp_path / "bills"
    args = ("generate", str(out), "--events", "200", "--days", "10")
    assert cli(tmp_path / "wh", *args).returncode == 0
    before = (out / "billing_batch_001.csv").read_bytes()
    again = cli(tmp_path / "wh", *args, "--seed", "8")
    assert again.returncode == 1 and "already holds generated billing files" in again.stderr
    assert len(again.stderr.splitlines()) == 1
    assert (out / "billing_batch_001.csv").read_bytes() == before
    assert cli(tmp_path / "wh", *args, "--seed", "8", "--overwrite").returncode == 0
    assert (out / "billing_batch_001.csv").read_bytes() != before


def test_debug_adds_the_traceback_to_the_one_line(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0
    plain = cli(wh, "query", "SELECT * FROM no_such_table")
    assert plain.returncode == 1 and len(plain.stderr.splitlines()) == 1
    debug = cli(wh, "--debug", "query", "SELECT * FROM no_such_table")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.splitlines()[0]


def test_ingest_help_names_every_format(tmp_path: Path) -> None:
    shown = cli(tmp_path / "wh", "ingest", "--help")
    assert all(name in shown.stdout for name in ("native", "focus", "cur", "Parquet"))


def test_ingest_reports_repeated_event_ids_once(tmp_path: Path, write_csv) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ["e1", "2025-01-01", "A1", "EC2", "1.00", "2025-01-02"],
        ["e1", "2025-01-01", "A1", "EC2", "2.00", "2025-01-02"],
    ]
    shown = cli(tmp_path / "wh", "ingest", str(write_csv("dupes.csv", rows)))
    assert shown.returncode == 0 and shown.stderr == ""
    assert shown.stdout.count("1 row(s) repeat an event_id") == 1


def test_ingest_says_which_files_landed_before_a_later_one_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    shown = cli(tmp_path / "wh", "ingest", str(SEED), str(empty))
    assert shown.returncode == 1 and shown.stderr.splitlines() == [
        f"error: {empty}: empty file, expected a CSV header"
    ]
    assert f"{SEED}: batch b000001-" in shown.stdout


def test_settings_errors_are_one_line(tmp_path: Path) -> None:
    for args, words in (
        (("--engine", "nope"), "engine: Input should be"),
        (("--lock-timeout", "0"), "greater than 0"),
    ):
        shown = cli(tmp_path / "wh", *args, "run")
        assert shown.returncode == 1 and len(shown.stderr.splitlines()) == 1 and words in shown.stderr


def test_an_error_quoting_a_huge_value_stays_a_short_line(tmp_path: Path) -> None:
    """A review made a 840,090-byte error line of a header naming seven 120 KB columns twice: names are
    cut to 60 characters there, and any error line to 2,000 characters and how many more there were."""
    names = [chr(ord("a") + i) * 120_000 for i in range(7)]
    bill = tmp_path / "dupes.csv"
    bill.write_text(
        ",".join(["event_id", "usage_date", "account_id", "service_name", "cost_usd", *names, *names])
    )
    shown = cli(tmp_path / "wh", "ingest", str(bill))
    (line,) = shown.stderr.splitlines()
    assert shown.returncode == 1 and "appear more than once in the header" in line and len(line) < 1000
    assert "a" * 60 + "…" in line and "a" * 61 not in line
    # Cut after escaping: twelve names of 60 invisible tag characters, each escaped to 10 characters
    tagged = [chr(0xE0020 + i) * 60 for i in range(12)]
    bill.write_text(
        ",".join(["event_id", "usage_date", "account_id", "service_name", "cost_usd", *tagged, *tagged])
    )
    (line,) = cli(tmp_path / "wh", "ingest", str(bill)).stderr.splitlines()
    assert "\\U000e0020" in line and len(line) <= 2000 + len("… (99,999 more characters)")
    for fmt in ("text", "json"):
        shown = cli(
            empty_warehouse(tmp_path / "wh2"),
            "--log-format",
            fmt,
            "query",
            "SELECT 1",
            "--format",
            "z" * 100_000,
        )
        (line,) = shown.stderr.splitlines()
        message = json.loads(line)["message"] if fmt == "json" else line
        assert shown.returncode == 1 and message.startswith("error: --format must be table, csv or json")
        assert len(message) < 2100 and message.endswith(" more characters)")


def test_with_json_logs_the_error_line_is_json_too(tmp_path: Path) -> None:
    shown = cli(empty_warehouse(tmp_path / "wh"), "--log-format", "json", "query", "SELEC 1")
    (line,) = shown.stderr.splitlines()
    body = json.loads(line)
    assert shown.returncode == 1 and body["level"] == "error" and body["exit_code"] == 1
    assert body["message"].startswith("error: query failed")


def test_terminal_output_shows_control_characters_as_escapes(tmp_path: Path, write_csv) -> None:  # type: ignore[no-untyped-def]
    hostile = "\x1b]0;pwned\x07\x1b[31mRED"
    bill = write_csv("esc.csv", [["e1", "2025-01-01", "A1", hostile, "1.00", "2025-01-02"]])
    assert cli(tmp_path / "wh", "ingest", str(bill)).returncode == 0
    shown = cli(tmp_path / "wh", "query", "SELECT service_name FROM raw_billing_events")
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout and "\\x1b]0;pwned\\x07" in shown.stdout


def test_an_error_naming_a_hostile_file_name_stays_one_plain_line(tmp_path: Path) -> None:
    """A file name is data: its newline, terminal escape and bidi override are shown escaped."""
    name = tmp_path / "no\nsuch\x1b[2J\u202efile.csv"
    refused = cli(tmp_path / "wh", "ingest", str(name))
    assert refused.returncode == 1
    line = refused.stderr.rstrip("\n")
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line, repr(line)
    assert line.startswith("error: ") and "no\\nsuch\\x1b[2J\\u202efile.csv" in line, line


# --- text from billing files, as a terminal shows it -----------------------------------------------------

ESC, RLO = "\x1b", "\u202e"


def test_ingest_shows_the_file_name_and_the_quarantine_reasons_as_text_on_a_terminal(tmp_path: Path) -> None:
    """A review found `ingest` reading them as rich markup: a value could print a clickable OSC 8 link
    dressed as a line of the tool's own, and a value holding `; ` or a quote escaped the blanking of
    values, so that one bad row counted as two kinds of reason."""
    name = "[bold red blink]URGENT[reverse].csv"
    bill = tmp_path / name
    bill.write_text(
        "event_id,usage_date,account_id,service_name,cost_usd\n"
        'z1,2025-01-02,111122223333,x,"1; [link=https://evil.example/pay]Fix: re-run with --force[/link]"\n'
        "z2,2025-01-02,111122223333,x,\"x'[link=http://evil.example/]CLICK-HERE[/link]'y\"\n"
        f'z3,2025-01-02,111122223333,x,"1{RLO}0{ESC}[2J"\n'
        "z4,2025-01-02,111122223333,x,abc\n"
        "z5,2025-01-02,111122223333,x,5\n"
    )
    code, shown = cli_on_terminal(tmp_path / "wh", "-q", "ingest", str(bill))
    text = shown.decode()
    assert code == 0, text
    assert (
        f"{ESC}]8" not in text and "evil.example" not in text and RLO not in text and f"{ESC}[2J" not in text
    )
    assert f"{bill}: batch " in text  # the name as it is, its brackets shown
    lines = [line.strip() for line in text.splitlines() if "quarantined" in line and "×" in line]
    assert lines == ["quarantined 4 × cost_usd … is not a decimal number"]
    reasons = cli(
        tmp_path / "wh", "query", "SELECT reason FROM quarantine ORDER BY source_row", "--format", "json"
    )
    assert [r["reason"] for r in json.loads(reasons.stdout)][1:3] == [
        "cost_usd 'x''[link=http://evil.example/]CLICK-HERE[/link]''y' is not a decimal number",
        "cost_usd '1?0?[2J' is not a decimal number",  # control and format characters as '?'
    ]


def test_csv_on_a_terminal_escapes_control_and_format_characters_and_stays_exact_in_a_pipe(
    tmp_path: Path,
) -> None:
    """The table view already escaped them; CSV wrote them raw, so `query --format csv` at a shell could
    clear the screen, set a link or reorder a line (found by a review). A file or a pipe gets the bytes."""
    wh = empty_warehouse(tmp_path / "wh")
    sql = "SELECT chr(27) || '[2J' || chr(8238) || 'gnp.exe' AS name, '=1+1' AS f, 1.50::DECIMAL(10,2) AS d"
    code, shown = cli_on_terminal(wh, "query", sql, "--format", "csv")
    assert code == 0 and shown.decode().splitlines() == ["name,f,d", "\\x1b[2J\\u202egnp.exe,'=1+1,1.50"]
    piped = cli(wh, "query", sql, "--format", "csv")
    assert piped.stdout.splitlines()[1] == f"{ESC}[2J{RLO}gnp.exe,'=1+1,1.50"
    code, table = cli_on_terminal(wh, "query", sql)
    assert code == 0 and "\\x1b[2J\\u202egnp.exe" in table.decode() and RLO not in table.decode()


def test_emoji_codes_in_text_from_a_file_are_shown_as_written(tmp_path: Path) -> None:
    """rich turns `:warning:` into an emoji even with markup off (found by a re-review): a file's name
    or an id from a file is printed as written, on stdout and in an error line."""
    bill = tmp_path / ":warning: ok.csv"
    bill.write_text(
        "event_id,usage_date,account_id,service_name,cost_usd\ne1,2025-01-02,:red_circle:,:lock:,-5\n"
    )
    piped = cli(tmp_path / "wh", "ingest", str(bill)).stdout
    _, drawn = cli_on_terminal(tmp_path / "wh", "ingest", str(bill))
    for shown in (piped, drawn.decode()):
        assert f"{bill}: " in shown and "⚠" not in shown
    missing = cli(tmp_path / "wh", "ingest", str(tmp_path / ":red_circle: payments.csv"))
    assert missing.returncode == 1 and ":red_circle: payments.csv: no such file" in missing.stderr
    table = cli(tmp_path / "wh", "query", "SELECT account_id, service_name FROM raw_billing_events")
    assert ":red_circle:" in table.stdout and ":lock:" in table.stdout and "🔴" not in table.stdout

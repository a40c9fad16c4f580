"""Cells as people write them where the API wants something stricter: a timezone abbreviation
(``EST``, ``PST``, ``CET``) is sent as the fixed offset it names, with one warning per distinct
value naming the zone most likely meant; a place (``New York``) is refused suggesting its zone;
true and false as European spreadsheets write them (``WAHR``, ``FAUX``...) are read. The command
line runs in this process against the simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkrunner.cli.app import main
from bulkrunner.operations import timezones
from bulkrunner.operations.timezones import parse_timezone
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from bulkrunner.simulator.operations import Schedule
from tests.fakes import run

KEY = "sk-spellings-SENTINEL-83"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    timezones.WARNED.clear()  # each abbreviation is warned of once a process
    yield
    timezones.WARNED.clear()


# --- timezones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "sent"),
    [
        ("EST", "EST"),  # the database's own: UTC-05:00 all year, sent as it is
        ("est", "EST"),
        ("MST", "MST"),
        ("CET", "CET"),  # the database's own, with EU summer time
        ("PST", "Etc/GMT+8"),  # not the database's: its offset's name (POSIX signs)
        ("EDT", "Etc/GMT+4"),
        ("CEST", "Etc/GMT-2"),
        ("BST", "Etc/GMT-1"),
        ("WET", "WET"),
    ],
)
def test_an_abbreviation_is_sent_as_the_offset_it_names(cell: str, sent: str) -> None:
    assert parse_timezone(cell) == (sent, None)


@pytest.mark.parametrize(
    ("cell", "meant"),
    [
        ("New York", "America/New_York"),
        ("new_york", "America/New_York"),
        ("  sao paulo ", "America/Sao_Paulo"),
        ("Los Angeles", "America/Los_Angeles"),
        ("Lodnon", "Europe/London"),
        ("Europe/Londn", "Europe/London"),
    ],
)
def test_a_place_suggests_its_zone(cell: str, meant: str) -> None:
    zone, error = parse_timezone(cell)
    assert zone is None
    assert error == f"{cell.strip()!r} is not an IANA timezone (did you mean {meant}?)"


def test_a_run_sends_abbreviations_as_offsets_warning_once_per_distinct_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(
        f"{cid},{zone},Mon-Fri,09:00,17:00\n"
        for cid, zone in [(1, "EST"), (2, "est"), (3, "PST"), (4, "PST"), (5, "Europe/Paris")]
    )
    path = tmp_path / "schedules.csv"
    path.write_text("campaign_id,timezone,days,start_hour,end_hour\n" + rows)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2, 3, 4, 5})) as sim:
        code, out, err = run(
            capsys, "run", str(path), "--operation", "schedule", "--base-url", sim.base_url,
            "--rate", "100/1", "--verify", "--report", "r.csv",
        )  # fmt: skip
        assert code == 0, out + err
        zones = {cid: sim.state.schedules[cid].timezone for cid in (1, 2, 3, 4, 5)}
    assert zones == {1: "EST", 2: "EST", 3: "Etc/GMT+8", 4: "Etc/GMT+8", 5: "Europe/Paris"}
    warned = [line for line in err.splitlines() if "timezone " in line and "fixed" in line]
    assert len(warned) == 2, err  # one per distinct value, not per row nor per read
    assert warned[0].endswith(
        "timezone EST is a fixed offset, UTC-05:00 all year: for New York's clock, write "
        "America/New_York, or the window is an hour off all summer"
    )
    assert warned[1].endswith(
        "timezone PST is a fixed offset, UTC-08:00 all year (sent as Etc/GMT+8): for Los "
        "Angeles's clock, write America/Los_Angeles, or the window is an hour off all summer"
    )
    # and run again, every row reads back as it was sent: unchanged, nothing sent
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2, 3, 4, 5})) as sim:
        for cid, zone in zones.items():
            sim.state.schedules[cid] = sim.state.schedules.get(cid) or _schedule(zone)
        code, out, err = run(
            capsys, "run", str(path), "--operation", "schedule", "--base-url", sim.base_url,
            "--report", "again.csv",
        )  # fmt: skip
        assert code == 0, out + err
        assert "5 unchanged" in out
        assert sim.state.writes() == []


def _schedule(zone: str) -> Schedule:
    return Schedule(zone, (1, 2, 3, 4, 5), "09:00", "17:00")


def test_a_database_zone_with_summer_time_is_warned_of_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", "bulkrunner")
    assert parse_timezone("CET") == ("CET", None)
    assert parse_timezone("CET") == ("CET", None)
    (said,) = [record.getMessage() for record in caplog.records]
    assert said == (
        "timezone CET is sent as the timezone database's zone CET, which keeps summer time; "
        "for Berlin's clock, write its own zone, Europe/Berlin"
    )


def test_validate_refuses_a_place_naming_its_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.csv"
    path.write_text("campaign_id,timezone\n1,New York\n2,PST\n")
    for way in ("quick", "pandas"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("BULKRUNNER_VALIDATE_PATH", way)
            code = main(["validate", str(path), "--operation", "schedule"])
        out = capsys.readouterr().out
        assert code == 1
        assert (
            f"{path} row 1: timezone: 'New York' is not an IANA timezone (did you mean "
            "America/New_York?)"
        ) in out
        assert "row 2" not in out  # PST is accepted


# --- true and false as European spreadsheets write them ----------------------------------------


def test_a_german_excel_file_with_wahr_and_falsch_is_sent_as_true_and_false(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "einstellungen.csv"  # European Excel: semicolons, its own TRUE and FALSE
    path.write_text(
        "campaign_id;send_as_plain_text;enable_ai_esp_matching\n1;WAHR;FALSCH\n2;FAUX;VRAI\n"
        "3;VERO;ONWAAR\n4;VERDADERO;FALSO\n",
        encoding="cp1252",
    )
    assert main(["validate", str(path)]) == 0
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2, 3, 4})) as sim:
        code, out, err = run(capsys, "run", str(path), "--base-url", sim.base_url, "--rate",
                             "100/1", "--report", "r.csv")  # fmt: skip
        assert code == 0, out + err
        sent = {
            cid: (s["send_as_plain_text"], s["enable_ai_esp_matching"])
            for cid, s in sim.state.settings.items()
        }
    assert sent == {1: (True, False), 2: (False, True), 3: (True, False), 4: (True, False)}

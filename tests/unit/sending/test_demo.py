"""``--simulate`` keeps its simulated account between commands, in the state folder: export, edit,
run, export again shows the edit, and the rollback command the run printed undoes it; ``bulkrunner
simulate --reset`` starts it afresh, and ``--no-state`` gives each command a new one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.config.folders import simulated_accounts_path
from bulkrunner.sending import demo
from bulkrunner.simulator import FaultPlan, SimulatorState
from bulkrunner.simulator.operations import Schedule
from bulkrunner.simulator.saved import SavedAccount, load, save
from tests.fakes import run


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a folder of the test's own, with the demo's injected faults (whose Retry-After would
    make the test wait on real time) left out: what is tested here is what the account keeps."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMARTLEAD_API_KEY", raising=False)
    monkeypatch.setattr(demo, "demo_faults", lambda ids, seed=0: FaultPlan())


def exported(capsys: pytest.CaptureFixture[str], name: str, *more: str) -> pd.DataFrame:
    code, _, err = run(capsys, "export", "--simulate", "--output", name, *more)
    assert code == 0, err
    return pd.read_csv(name, dtype=str, keep_default_na=False).set_index("campaign_id")


def limit(frame: pd.DataFrame, campaign: str) -> int:
    return int(str(frame.loc[campaign, "sending_limit"]))


def test_export_edit_run_export_shows_the_edit_and_the_printed_rollback_undoes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = exported(capsys, "first.csv")
    campaign = first.index[0]
    before = limit(first, campaign)
    edited = first.copy()
    edited.loc[campaign, "sending_limit"] = str(before + 7)
    edited.reset_index().to_csv("edited.csv", index=False)

    code, out, err = run(capsys, "run", "edited.csv", "--simulate", "--report", "r.csv")
    assert code == 0, err
    assert "1 succeeded" in out
    again = exported(capsys, "second.csv")
    assert limit(again, campaign) == before + 7
    assert limit(again, again.index[1]) == limit(first, first.index[1])  # the others as they were

    (undo,) = re.findall(r"undo with: (bulkrunner rollback [^)]*)\)", err)
    code, out, err = run(capsys, *shlex.split(undo)[1:])
    assert code == 0, err
    assert limit(exported(capsys, "third.csv"), campaign) == before


def test_simulate_reset_starts_the_account_afresh(
    capsys: pytest.CaptureFixture[str], own_state_folder: Path
) -> None:
    first = exported(capsys, "first.csv")
    campaign = first.index[0]
    Path("edited.csv").write_text(f"campaign_id,sending_limit\n{campaign},3\n")
    assert run(capsys, "run", "edited.csv", "--simulate")[0] == 0
    assert limit(exported(capsys, "kept.csv"), campaign) == 3

    code, out, _ = run(capsys, "simulate", "--reset")
    assert code == 0
    assert f"{simulated_accounts_path()} removed" in out
    assert not simulated_accounts_path().exists()
    assert limit(exported(capsys, "fresh.csv"), campaign) == limit(first, campaign)
    code, out, _ = run(capsys, "simulate", "--reset")
    assert (code, out.strip()) == (
        0,
        f"nothing to reset: no simulated account is kept in {own_state_folder}",
    )


def test_no_state_gives_each_command_a_new_account(capsys: pytest.CaptureFixture[str]) -> None:
    first = exported(capsys, "first.csv", "--no-state")
    campaign = first.index[0]
    Path("edited.csv").write_text(f"campaign_id,sending_limit\n{campaign},3\n")
    assert run(capsys, "run", "edited.csv", "--simulate", "--no-state")[0] == 0
    assert not simulated_accounts_path().exists()
    assert limit(exported(capsys, "again.csv", "--no-state"), campaign) == limit(first, campaign)


def test_a_state_folder_of_its_own_keeps_an_account_of_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = exported(capsys, "first.csv")
    campaign = first.index[0]
    Path("edited.csv").write_text(f"campaign_id,sending_limit\n{campaign},3\n")
    other = ("--state-dir", str(tmp_path / "other"))
    assert run(capsys, "run", "edited.csv", "--simulate", *other)[0] == 0
    assert limit(exported(capsys, "usual.csv"), campaign) == limit(first, campaign)
    assert limit(exported(capsys, "other.csv", *other), campaign) == 3
    assert run(capsys, "simulate", "--reset", *other)[0] == 0
    assert limit(exported(capsys, "reset.csv", *other), campaign) == limit(first, campaign)


@pytest.mark.parametrize("command", ["export", "run", "plan", "doctor"])
@pytest.mark.parametrize(
    "kept", ["{not json", '{"version": 1, "accounts": {"": {"campaigns": 3}}}']
)
def test_a_damaged_simulated_account_is_set_aside_and_the_account_starts_afresh(
    command: str, kept: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = simulated_accounts_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kept)
    Path("edited.csv").write_text("campaign_id,sending_limit\n1480601,3\n")
    given = {"export": ["--output", "x.csv"], "run": ["edited.csv"], "plan": ["edited.csv"]}
    code, _, err = run(capsys, command, *given.get(command, []), "--simulate")
    assert code == 0, err
    assert f"cannot read the simulated account in {path} (" in err
    assert f"it was moved to {path}.unreadable: the simulated account starts afresh" in err
    assert Path(f"{path}.unreadable").read_text() == kept  # kept for a look, not lost
    assert "Traceback" not in err


def test_the_saved_account_reads_back_as_it_was(tmp_path: Path) -> None:
    """Settings, schedules, statuses, email accounts and leads (their ids, memberships, order,
    statuses, a removal) come back as they were, and the next membership gets a new id."""
    state = SimulatorState()
    state.settings[5] = {"sending_limit": 9, "track_settings": ["DONT_EMAIL_OPEN"]}
    state.schedules[5] = Schedule("Europe/Paris", (1, 2), "08:00", "17:00", None)
    state.statuses[6] = "PAUSED"
    state.email_accounts[6] = [3, 4]
    leads = state.leads
    ada = leads.lead("Ada@X.com", ("Ada", None, None, None, None, None, None, None), {"k": 1})
    bob = leads.lead("bob@y.com", unsubscribed=True)
    leads.join(5, ada)
    leads.join(5, bob, "PAUSED", last_step=True)
    leads.join(6, ada)
    leads.leave(5, ada)
    leads.seeded = {5}
    leads.named = {(6, "ada@x.com")}
    path = tmp_path / "simulator.json"
    save(path, "acme", SavedAccount(state, {5, 6, 7, 10}))
    save(path, "", SavedAccount(SimulatorState(), {1}))  # another account, beside it

    back = load(path, "acme")
    assert back.campaigns == {5, 6, 7, 10}
    kept = back.state
    assert kept.settings == state.settings
    assert kept.schedules == state.schedules
    assert kept.statuses == state.statuses
    assert kept.email_accounts == state.email_accounts
    for campaign in (5, 6):
        assert [m.view() for m in kept.leads.campaign(campaign).ordered()] == [
            m.view() for m in leads.campaign(campaign).ordered()
        ]
    assert kept.leads.member(5, "bob@y.com").last_step  # type: ignore[union-attr]
    assert kept.leads.held == leads.held == 2
    assert kept.leads.find("ada@x.com").campaigns == 1  # type: ignore[union-attr]
    assert (kept.leads.seeded, kept.leads.named) == ({5}, {(6, "ada@x.com")})
    assert kept.leads.join(7, bob).map_id == leads.join(7, bob).map_id
    assert load(path, "").campaigns == {1}
    assert load(path, "nobody").campaigns == set()


def test_a_kept_account_holds_the_leads_each_new_input_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's demo, then the lead-status sample, on one kept account: the demo's run had
    marked the account seeded, so the sample's leads were never added, and its every row failed
    ("no lead with this address in the campaign"). Each input's leads are added to its
    campaigns once: a lead the run then removes is not added again."""
    Path("settings.csv").write_text("campaign_id,sending_limit\n1480614,33\n")
    code, _, err = run(capsys, "run", "settings.csv", "--simulate", "--report", "s.csv")
    assert code == 0, err
    Path("pause.csv").write_text(
        "campaign_id,email,action\n1480614,ada@acme.example.com,pause\n"
        "1480615,alan@initech.example.com,pause\n"
    )
    pause = ["run", "pause.csv", "--operation", "lead-status", "--simulate"]
    code, out, err = run(capsys, *pause, "--report", "p.csv")
    assert code == 0, err
    assert "failed" not in out  # each paused (or found paused already)
    code, out, err = run(capsys, *pause, "--report", "p2.csv")
    assert (code, "2 unchanged" in out) == (0, True), err  # paused by the run before, not anew

    kept = simulated_accounts_path(None)
    account = load(kept, "")
    ada = account.state.leads.find("ada@acme.example.com")
    assert ada is not None
    account.state.leads.leave(1480614, ada)  # as a removal would
    save(kept, "", account)
    code, out, err = run(capsys, *pause, "--report", "p3.csv")
    assert code == 1, err
    report = pd.read_csv("p3.csv", dtype=str, keep_default_na=False)
    assert report["error"].tolist() == [  # removed: not added again
        "campaign 1480614: no lead with this address in the campaign; not sent",
        "",
    ]

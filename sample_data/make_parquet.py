"""Rebuild campaign_settings.parquet, the Parquet twin of campaign_settings.csv, in native types:
a list column for track_settings, nullable integers and booleans, strings.

    python sample_data/make_parquet.py
"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
INTS = ("sending_limit", "min_time_btwn_emails", "follow_up_percentage")
BOOLS = ("enable_ai_esp_matching", "send_as_plain_text")


def track_list(cell: str) -> list[str] | None:
    if not cell:
        return None
    return [] if cell == "[]" else cell.split(";")


def main() -> None:
    csv = pd.read_csv(HERE / "campaign_settings.csv", dtype=str, keep_default_na=False)
    out = pd.DataFrame({"campaign_id": csv["campaign_id"].astype("int64")})
    out["track_settings"] = [track_list(cell) for cell in csv["track_settings"]]
    out["stop_lead_settings"] = csv["stop_lead_settings"].replace("", None)
    for name in INTS:
        out[name] = pd.array([int(c) if c else None for c in csv[name]], dtype="Int64")
    for name in BOOLS:
        out[name] = pd.array([c == "true" if c else None for c in csv[name]], dtype="boolean")
    out["unsubscribe_text"] = csv["unsubscribe_text"].replace("", None)
    out.to_parquet(HERE / "campaign_settings.parquet", index=False)


if __name__ == "__main__":
    main()

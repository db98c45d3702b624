"""A US-style use-of-force export in the shape a tester met: one row per officer, a misspelt date header.

`Occured_date_time` holds month-first date-times (`06/07/2014 10:30:00 PM`); `Incident_Num` repeats for the
officers of one incident, so it is not a report id. The first rows are all in the first twelve days of their
months (every date reads both ways there); later rows are not. `write(path)` writes it and returns the true
date-times, one per data row, to check a load against.
"""
from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

HEADER = ["Incident_Num", "Occured_date_time", "Officer_Badge", "Officer_Sex", "Officer_Injured",
          "Subject_Race", "Subject_Sex", "Subject_Injured", "Force_Type", "District"]
FORCES = ["Taser", "Handcuffing", "Takedown", "Baton", "OC Spray", "Verbal Command"]
DISTRICTS = ["North", "South", "East", "West", "Central"]


def rows(n_incidents: int = 400, seed: int = 7, early: int = 120) -> list[tuple[list[str], datetime]]:
    """Return (cells, true date-time) per row; the first `early` incidents fall on days 1 to 12."""
    rng = random.Random(seed)
    out = []
    for i in range(n_incidents):
        if i < early:
            when = datetime(2014, rng.randint(1, 12), rng.randint(1, 12), rng.randint(0, 23), rng.choice((0, 15, 30)))
        else:
            when = datetime(2014, 1, 1) + timedelta(days=rng.randint(0, 364), minutes=rng.randint(0, 1439))
        text = when.strftime("%m/%d/%Y %I:%M:%S %p")
        for _ in range(rng.choice((1, 1, 2, 3))):
            cells = [f"2014-{i + 1:05d}", text, f"B{rng.randint(100, 460)}", rng.choice("MF"),
                     rng.choice(("Yes", "No", "No", "No")), rng.choice(("White", "Black", "Hispanic", "Asian")),
                     rng.choice("MF"), rng.choice(("Yes", "No", "No")), rng.choice(FORCES), rng.choice(DISTRICTS)]
            out.append((cells, when))
    return out


def write(path: Path, **kwargs) -> list[datetime]:
    """Write the export to `path`; return each data row's true date-time, in file order."""
    made = rows(**kwargs)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(cells for cells, _ in made)
    return [when for _, when in made]

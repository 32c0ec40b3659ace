"""Writes the holiday fixtures in this folder from PyPI's `holidays` package.

Run once (see README.md); the output is committed, so no test depends on Python.
Each file is a JSON list in the calendar's own holiday format, so a test can
paste it into a calendar as it is.
"""

import json
import pathlib

import holidays

YEARS = range(2025, 2029)
# (file name, country, subdivision or None for the national list)
SETS = [
    ("de-national-2025-2028.json", "DE", None),
    ("us-federal-2025-2028.json", "US", None),
    ("gb-england-2025-2028.json", "GB", "ENG"),
]

here = pathlib.Path(__file__).parent
for file_name, country, subdiv in SETS:
    days = holidays.country_holidays(country, subdiv=subdiv, years=YEARS, language="en_US")
    rows = [{"kind": "date", "date": d.isoformat(), "name": name} for d, name in sorted(days.items())]
    text = "[\n" + ",\n".join(" " + json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
    (here / file_name).write_text(text, encoding="utf-8")
    print(file_name, len(rows))

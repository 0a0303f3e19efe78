"""Issue 14's bench section: the page weight counts every file the browser downloads once, in the right
part, raw and gzip; the section says plainly when a screen could not be measured."""

from __future__ import annotations

import gzip
from pathlib import Path

from bench.console import CHART, page_weight, section


def test_page_weight_counts_each_file_once_in_its_part(tmp_path: Path) -> None:
    files = {
        "index.html": b"<!doctype html><title>x</title>" * 10,
        "app.js": b"export const a = 1\n" * 50,
        "ui.js": b"export const b = 2\n" * 70,
        "styles.css": b"body { margin: 0 }\n" * 30,
        CHART: b"!function(){}()" * 200,
        "config.json": b'{"apiBase": ""}',  # made per deployment: not a file of the page's weight
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    rows = {row["what"].split(" (")[0]: row for row in page_weight(tmp_path)}

    assert rows["ES modules"]["files"] == 2
    assert rows["ES modules"]["raw"] == len(files["app.js"]) + len(files["ui.js"])
    assert rows[CHART]["raw"] == len(files[CHART])
    assert rows["ES modules"]["gzip"] == sum(
        len(gzip.compress(files[n], compresslevel=6)) for n in ("app.js", "ui.js")
    )
    parts = [r for what, r in rows.items() if what != "total"]
    assert (
        rows["total"]["raw"]
        == sum(r["raw"] for r in parts)
        == sum(len(d) for n, d in files.items() if n != "config.json")
    )
    assert rows["total"]["files"] == 5 and rows["total"]["gzip"] < rows["total"]["raw"]


def test_section_names_a_screen_it_could_not_measure() -> None:
    weight = [{"what": "total", "files": 1, "raw": 10, "gzip": 5}]
    imports = {"console": {"modules": 3, "ratio": 1.5, "boto3": False, "pydantic": True}}
    text = section("here", weight, imports, {"card": 4, "search": None})
    assert "| the contact card (`#/contacts/<id>`) | 4 |" in text
    assert "not measured: the console has no such screen yet" in text
    assert "| `functions.console.handler` | 3 | 1.50× | no | yes |" in text

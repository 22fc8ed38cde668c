"""Every place in the code that does something the provider documents do not state carries a marker
``UNCONFIRMED(<row id>)``, and the README's table "What is documented and what is not" has a row for
it marked unconfirmed; every row marked unconfirmed names a marker still in the code.

The rule, for whoever adds a marker: write ``UNCONFIRMED(some-row-id)`` (lower case, digits and
dashes) in a comment or docstring where the behaviour is implemented, and add the row
``| `some-row-id` | <what the emulator does> | unconfirmed | <setting that changes it, or none> |`` to
the table. One row may have several markers (the same behaviour in several places)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HEADING = "## What is documented and what is not"
MARKER = re.compile(r"UNCONFIRMED(?:\((?P<id>[^)\s]*)\))?")
ROW_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
STATUSES = ("documented", "observed from the SDK", "unconfirmed")


def markers() -> tuple[dict[str, list[str]], list[str]]:
    """Row id -> where its markers are; and the markers without a valid row id."""
    found: dict[str, list[str]] = {}
    bare: list[str] = []
    for path in sorted((ROOT / "emulator").rglob("*")):
        if path.suffix not in (".py", ".xsd") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in MARKER.finditer(line):
                where = f"{path.relative_to(ROOT)}:{number}"
                row = match["id"]
                if row is None or not ROW_ID.fullmatch(row):
                    bare.append(where)
                else:
                    found.setdefault(row, []).append(where)
    return found, bare


def table() -> dict[str, str]:
    """Row id -> status, from the README's table."""
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"README row needs 4 cells (id, behaviour, status, setting): {line}"
        row, status = cells[0].strip("`"), cells[2]
        assert row not in rows, f"README row `{row}` appears twice"
        assert status.startswith(STATUSES), f"README row `{row}`: status must start with one of {STATUSES}"
        rows[row] = status
    return rows


def test_every_marker_names_a_row_id() -> None:
    _, bare = markers()
    assert not bare, (
        "UNCONFIRMED markers without a row id; write UNCONFIRMED(<row-id>) (lower case, digits, "
        "dashes) and add that row to README.md's table: " + ", ".join(bare)
    )


def test_markers_and_unconfirmed_rows_agree() -> None:
    found, _ = markers()
    rows = table()
    unconfirmed = {row for row, status in rows.items() if status.startswith("unconfirmed")}
    missing_rows = sorted(set(found) - unconfirmed)
    problems = []
    for row in missing_rows:
        places = ", ".join(found[row])
        if row in rows:
            problems.append(f"row `{row}` is marked {rows[row]!r} but the code at {places} says UNCONFIRMED")
        else:
            problems.append(
                f"UNCONFIRMED({row}) at {places} has no row: add to README.md under {HEADING!r}: "
                f"| `{row}` | <what the emulator does> | unconfirmed | <setting that changes it, or none> |"
            )
    for row in sorted(unconfirmed - set(found)):
        problems.append(
            f"README row `{row}` is unconfirmed but no code carries UNCONFIRMED({row}): add the marker "
            "where the behaviour is implemented, or remove the row (or mark it documented/observed)"
        )
    assert not problems, "\n".join(problems)


def test_the_table_names_the_settings_it_promises() -> None:
    # A setting named in the table exists: a key of a settings section, or a field of an account.
    from emulator import config

    settings = config.Settings()
    known: set[str] = set()
    for section in ("server", "alibaba", "tencent", "callbacks"):
        known.update(f"{section}.{name}" for name in getattr(settings, section).__dataclass_fields__)
    known.update(f"alibaba.accounts[].{name}" for name in config.AlibabaAccount.__dataclass_fields__)
    known.update(f"tencent.accounts[].{name}" for name in config.TencentAccount.__dataclass_fields__)
    section = README.read_text(encoding="utf-8").split(HEADING, 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            setting = line.strip().strip("|").split(" | ")[3]
            named.update(re.findall(r"`((?:server|alibaba|tencent|callbacks)\.[a-z_\[\].]+)", setting))
    unknown = sorted(named - known)
    assert not unknown, f"README's table names settings that do not exist: {unknown}"

"""Read README.md: its python code blocks, its set-up commands and its conventions table."""

import math
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def text():
    return README.read_text(encoding="utf-8")


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", text(), flags=re.S)


def setup_commands():
    section = text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def convention_rows():
    """(expression, {name: value}, value, derivatives) for each row of the table."""
    section = text().split("## Conventions", 1)[1].split("\n## ", 1)[0]
    numbers = {"inf": math.inf, "nan": math.nan}
    rows = []
    for line in section.splitlines():
        cells = re.findall(r"`([^`]*)`", line)
        if not line.startswith("| `") or len(cells) < 4:
            continue
        expression, at, value, derivatives = cells[:4]
        point = {name.strip(): eval(number, numbers)
                 for name, number in (item.split("=") for item in at.split(","))}
        derivatives = eval(derivatives, numbers)
        if not isinstance(derivatives, tuple):
            derivatives = (derivatives,)
        rows.append((expression, point, eval(value, numbers), derivatives))
    return rows

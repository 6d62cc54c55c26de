"""Reading back the Markdown tables the leaderboard writes."""


def md_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``text``, as {column: cell}."""
    lines = [x for x in text.splitlines() if x.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    return [dict(zip(header, (c.strip() for c in x.strip("|").split(" | ")), strict=True)) for x in lines[1:]]


def md_row(text: str, task: str, variant: str) -> dict[str, str]:
    """The one row of (task, variant) in the first Markdown table of ``text``."""
    [found] = [r for r in md_rows(text) if (r["task"], r["variant"]) == (task, variant)]
    return found

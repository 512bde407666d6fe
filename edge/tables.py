"""Plain-text and Markdown tables, the one way every report and command draws them.

Cells arrive already formatted as strings; the first ``left`` columns are left-aligned
(names), the rest right-aligned (numbers).
"""

from __future__ import annotations

from collections.abc import Sequence


def text(columns: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A fixed-width terminal table with a rule under the header."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    head = fmt.format(*columns)
    return "\n".join([head, "-" * len(head), *(fmt.format(*r) for r in rows)])


def markdown(columns: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A GitHub-flavoured Markdown table, numbers right-aligned."""
    rule = "|" + "|".join("---" if i < left else "---:" for i in range(len(columns))) + "|"
    lines = ["| " + " | ".join(columns) + " |", rule]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])

"""Rules for text that costlake writes out, shared by every layer that writes it (CLI, API, page).

`neutralise_cell` keeps a spreadsheet from running a cell of a CSV download as a formula;
`names` is the name policy, which withholds names from billing files that read as prose or
instructions wherever text is built for people or models.
A package, not a root module: the package root stays small (tests/test_layout.py).
"""

from __future__ import annotations

from costlake.text.csv_cells import neutralise_cell

__all__ = ["neutralise_cell"]

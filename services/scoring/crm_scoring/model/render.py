"""The stored JSON text of the explanations, filled column by column.

A score's explanation is the dict {"value", "inputs", "explanation"}; its JSON text is filled into a template per
customer from columns prepared for all the customers of a slice at once: numbers are formatted by one `orjson.dumps`
of the whole column (so they read exactly as orjson writes them inside the dict). The text is byte for byte what
`orjson.dumps` gives for the dict, at a fraction of the cost of building the dicts. The templates and sentences of
each score are beside its formula, in crm_scoring.model.scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from crm_scoring.model.exact import rounded_array


def json_values(values: Sequence[Any]) -> list[str]:
    """JSON text of each number / None / bool, as orjson writes it."""
    if not len(values):
        return []
    return orjson.dumps(list(values)).decode()[1:-1].split(",")


def json_numbers(values: np.ndarray, known: np.ndarray | None = None, digits: int | None = None) -> list[str]:
    """JSON text of each (Python-rounded) value; null where not known."""
    values = np.asarray(values)
    if digits is not None:
        values = rounded_array(values, digits)
    python = values.tolist()
    if known is not None:
        python = [v if k else None for v, k in zip(python, np.asarray(known, dtype=bool).tolist())]
    return json_values(python)


def json_strings(texts: Sequence[str]) -> list[str]:
    """JSON string literals; the sentences hold no quote, backslash or control character, so quoting is enough."""
    joined = "".join(texts)
    if '"' in joined or "\\" in joined or not joined.isprintable():
        return [orjson.dumps(t).decode() for t in texts]
    return ['"' + t + '"' for t in texts]


def fill(template: str, *columns: Sequence[str]) -> list[str]:
    return [template % row for row in zip(*columns)]


def nullable(values: np.ndarray) -> tuple[list[Any], list[bool]]:
    """Python values (None for NaN) and whether each is known."""
    known = ~np.isnan(values)
    return [v if k else None for v, k in zip(values.tolist(), known.tolist())], known.tolist()

"""The pure context assembly (ENGINE.md section 8): budgets, windows, stripping, the distilled prefix.

Everything here is synchronous and deterministic, does no I/O and reads no clock; the token counter is an
argument. The session service prepares an :class:`AssemblyInput` per transform and calls :func:`assemble`
(contract: ``docs/internal/transform-api.md``).
"""

from lore_core.context.assemble import MAX_BREAKPOINTS, Assembly, AssemblyInput, assemble
from lore_core.context.budgets import Budgets, budgets, fits, layer0_size, should_compress
from lore_core.context.dedup import ReadRange, read_range
from lore_core.context.history import History
from lore_core.context.prefix import (
    NOTICE_TEXT,
    PrefixCache,
    meta_row,
    pair_tokens,
    prefix_pair,
    render_row,
    render_rows,
    select_rows,
    update_prefix_cache,
)
from lore_core.context.strip import dedup_outputs, strip_message, strip_tool_outputs
from lore_core.context.turns import is_human, turn_start, unit_start, window_start_at_or_after

__all__ = [
    "MAX_BREAKPOINTS",
    "NOTICE_TEXT",
    "Assembly",
    "AssemblyInput",
    "Budgets",
    "History",
    "PrefixCache",
    "ReadRange",
    "assemble",
    "budgets",
    "dedup_outputs",
    "fits",
    "is_human",
    "layer0_size",
    "meta_row",
    "pair_tokens",
    "prefix_pair",
    "read_range",
    "render_row",
    "render_rows",
    "select_rows",
    "should_compress",
    "strip_message",
    "strip_tool_outputs",
    "turn_start",
    "unit_start",
    "update_prefix_cache",
    "window_start_at_or_after",
]

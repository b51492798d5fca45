"""The batching engine behind :class:`~lore_batch.BatchLLMClient` (memory mode; BATCH.md section 5).

Internal: the facades in :mod:`lore_batch.client` are the public way in. Modules, one noun each:
``items`` (records, states, custom_ids), ``grouping`` (pure grouping and splitting), ``flusher`` (queue,
windows, creates), ``poller`` (the poll loop and rescue times), ``results`` (download and apply),
``fallback`` (the sync executor), ``disable`` (the disable list), ``channels`` (per-credential SDK copies and
request budgets), ``ledger`` (request-log rows), ``settings`` (limits and counters), ``shutdown`` (memory-mode
close), ``waits`` (clock-or-event waits) and ``core`` (the engine).
"""

from .core import Engine, EngineCounters, EngineSettings

__all__ = ["Engine", "EngineCounters", "EngineSettings"]

"""Durable mode of the batching engine: queued calls and batches as rows in the store, pooled across processes
and hosts (BATCH.md 6). ``BatchLLMClient(store=...)`` builds it; these are the parts a host may name."""

from lore_batch.pool.lore_handlers import AnswerSink, lore_handlers
from lore_batch.pool.records import HandledResult, ResultHandler
from lore_batch.pool.settings import OnClose, PoolSettings

__all__ = ["AnswerSink", "HandledResult", "OnClose", "PoolSettings", "ResultHandler", "lore_handlers"]

"""Deterministic emulator responders for the engine's worker prompts, one module per worker.

:data:`WORKER_RESPONDERS` pairs each matcher with its responder; :class:`AnthropicEmulator` registers them
by default (``worker_responders=False`` leaves them out), so the whole engine runs offline.
"""

from collections.abc import Sequence

from lore_batch.emulator.responders import Matcher, Responder
from lore_batch.emulator.workers.curate import curate_responder, matches_curate
from lore_batch.emulator.workers.distill import distill_responder, matches_distill
from lore_batch.emulator.workers.meta import matches_meta, meta_responder
from lore_batch.emulator.workers.validate import matches_validate, validate_responder

__all__ = [
    "WORKER_RESPONDERS",
    "curate_responder",
    "distill_responder",
    "matches_curate",
    "matches_distill",
    "matches_meta",
    "matches_validate",
    "meta_responder",
    "validate_responder",
]

WORKER_RESPONDERS: Sequence[tuple[Matcher, Responder]] = (
    (matches_distill, distill_responder),
    (matches_meta, meta_responder),
    (matches_curate, curate_responder),
    (matches_validate, validate_responder),
)

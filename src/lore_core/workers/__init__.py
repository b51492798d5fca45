"""The engine's background workers: distillation, meta-distillation, curation, validation, and the scheduler
that triggers them and owns their tasks."""

from lore_core.workers.curator import CurationReport, Curator
from lore_core.workers.distiller import Distiller, DistillReport
from lore_core.workers.reflector import MetaWorker
from lore_core.workers.replay import AnswerOutcome, StoredAnswers, apply_answer
from lore_core.workers.runtime import BackgroundGate, Replay, Replayed, WorkerContext
from lore_core.workers.scheduler import BackgroundFailure, IdleReport, WorkerScheduler
from lore_core.workers.validator import Validator

__all__ = [
    "AnswerOutcome",
    "BackgroundFailure",
    "BackgroundGate",
    "CurationReport",
    "Curator",
    "DistillReport",
    "Distiller",
    "IdleReport",
    "MetaWorker",
    "Replay",
    "Replayed",
    "StoredAnswers",
    "Validator",
    "WorkerContext",
    "WorkerScheduler",
    "apply_answer",
]

"""The engine's background workers: distillation, meta-distillation, curation, validation, and the scheduler
that triggers them and owns their tasks."""

from lore_core.workers.curator import CurationReport, Curator
from lore_core.workers.distiller import Distiller, DistillReport
from lore_core.workers.reflector import MetaWorker
from lore_core.workers.runtime import BackgroundGate, WorkerContext
from lore_core.workers.scheduler import BackgroundFailure, IdleReport, WorkerScheduler
from lore_core.workers.validator import Validator

__all__ = [
    "BackgroundFailure",
    "BackgroundGate",
    "CurationReport",
    "Curator",
    "DistillReport",
    "Distiller",
    "IdleReport",
    "MetaWorker",
    "Validator",
    "WorkerContext",
    "WorkerScheduler",
]

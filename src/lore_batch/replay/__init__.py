"""Replays and the demo: conversations through lore-memory and two baselines, priced with prompt caching.

- :mod:`~lore_batch.replay.simulate`: the pure prompt-cache cost simulator.
- :mod:`~lore_batch.replay.baselines`: what an agent without lore-memory sends (full history; compaction at 80%).
- :mod:`~lore_batch.replay.synthetic`: the seeded coding-session generator behind ``lore demo``.
- :mod:`~lore_batch.replay.runner`: :func:`replay_transcript`, the turn-by-turn run through ``Lore``.
- :mod:`~lore_batch.replay.backend`: the emulator or the real API; :mod:`~lore_batch.replay.agent`: the agent's
  own call in ``lore demo``.
- :mod:`~lore_batch.replay.prompts`: what each request sends, as simulator segments.
- :mod:`~lore_batch.replay.offline` and :mod:`~lore_batch.replay.stepping`: what makes an offline run
  reproducible (simulated time for background work, jobs in order, seeded ids).
- :mod:`~lore_batch.replay.workers`: the workers' calls from the request log, priced.
- :mod:`~lore_batch.replay.report`: the report and its JSON; :mod:`~lore_batch.replay.plot`: the PNG.
"""

from lore_batch.replay.backend import Backend, build_backend, emulator_backend, live_backend
from lore_batch.replay.report import ReplayReport, report_to_json
from lore_batch.replay.runner import DEFAULT_SYSTEM, ReplayOptions, replay_transcript
from lore_batch.replay.synthetic import DEMO_SYSTEM, DEMO_TOOLS, coding_session

__all__ = [
    "DEFAULT_SYSTEM",
    "DEMO_SYSTEM",
    "DEMO_TOOLS",
    "Backend",
    "ReplayOptions",
    "ReplayReport",
    "build_backend",
    "coding_session",
    "emulator_backend",
    "live_backend",
    "replay_transcript",
    "report_to_json",
]

"""Where a replay's model calls go: the in-process emulator (offline, simulated time) or the real API.

Both backends are the same code path: a real ``anthropic.AsyncAnthropic`` that the agent's calls, the
workers' synchronous client and the batch client share. Offline, it talks to
:class:`~lore_batch.emulator.AnthropicEmulator` over an in-process transport on a
:class:`~lore_batch.replay.stepping.SteppingClock` that the run moves from one deadline to the next (a batch
that "takes" 90 s costs no wall time). Live, it talks to the Anthropic API on the system clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import anthropic

from lore_batch.clock import Clock, SystemClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.replay.stepping import SteppingClock
from lore_core.errors import ConfigError

__all__ = ["BATCH_DELAY_SECONDS", "Backend", "build_backend", "emulator_backend", "live_backend"]

BATCH_DELAY_SECONDS: Final = 90.0
"""How long the emulator takes to end a batch (a one-request batch takes 1-2 minutes on the real service)."""
_EMULATOR_KEY: Final = "sk-ant-demo-offline-key"


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """The client every call of a run uses, the clock of the workers' calls, and how to run them.

    ``wait_for_workers``: background work finishes between two turns (deterministic; offline). Live, the
    workers run alongside the session and the run waits for them at the end. ``strip_thinking``: drop
    thinking blocks from the agent's requests (a recorded or generated signature is not one the API accepts).
    """

    kind: Literal["emulator", "anthropic"]
    client: anthropic.AsyncAnthropic
    clock: Clock
    emulator: AnthropicEmulator | None = None
    wait_for_workers: bool = True
    strip_thinking: bool = False

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.close()


def emulator_backend(*, seed: int = 0, start: float = 1_700_000_000.0) -> Backend:
    """The offline backend: a fresh emulator (seeded) on a stepping clock that starts at ``start`` (epoch
    seconds)."""
    clock = SteppingClock(start=start)
    emulator = AnthropicEmulator(clock=clock, seed=seed, batch_delay=BATCH_DELAY_SECONDS)
    return Backend(
        kind="emulator", client=emulator.client(api_key=_EMULATOR_KEY), clock=clock, emulator=emulator
    )


def live_backend(api_key: str) -> Backend:
    """The real Anthropic API with ``api_key``, on the system clock (nothing is sent until a call is made)."""
    client = anthropic.AsyncAnthropic(api_key=api_key)
    return Backend(
        kind="anthropic", client=client, clock=SystemClock(), wait_for_workers=False, strip_thinking=True
    )


def build_backend(
    *, live: bool, env: Mapping[str, str], seed: int = 0, start: float = 1_700_000_000.0
) -> Backend:
    """The emulator unless ``live``; live needs ``ANTHROPIC_API_KEY`` in ``env``.

    Raises:
        ConfigError: ``live`` without ``ANTHROPIC_API_KEY``.

    Example::

        build_backend(live=False, env=os.environ).kind   # 'emulator', whatever the environment holds
    """
    if not live:
        return emulator_backend(seed=seed, start=start)
    key = env.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        raise ConfigError("--live needs ANTHROPIC_API_KEY in the environment")
    return live_backend(key)

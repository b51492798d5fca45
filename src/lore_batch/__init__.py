"""lore-memory's batching: pool non-urgent LLM calls into the Anthropic Message Batches API."""

__all__: list[str] = []

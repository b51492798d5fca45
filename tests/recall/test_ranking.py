"""Recall's pure steps: terms, reciprocal rank fusion on hand-built lists, snippets, the character budget, and
the fusion of store lists by ``search_history`` (on a store stub that returns hand-built matches)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from lore_core.errors import ConfigError
from lore_core.ranking import ELLIPSIS, RRF_K, fuse, query_terms, snippet, tidy, within_budget
from lore_core.recall import DistillationSource, KnowledgeSource, MessageSource, search_history
from lore_core.store import DistillationRecord, KnowledgeRecord, MessageRecord
from lore_core.store.records import TextMatch, TextSearch

NOW = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)


def test_query_terms_keep_words_and_numbers_drop_stop_words_and_split_punctuation() -> None:
    assert query_terms("Which port did we pick for the DB?") == ("port", "pick", "db")
    assert query_terms("db.example.com:5433 ERR_CONN_REFUSED") == (
        "db", "example", "com", "5433", "err", "conn", "refused",
    )  # fmt: skip
    assert query_terms("the the THE port Port") == ("port",)
    assert query_terms("what is it?") == ()
    assert query_terms("café Straße") == ("café", "straße")
    assert len(query_terms(" ".join(f"w{n}" for n in range(100)))) == 32


def test_rrf_fuses_a_hand_built_case_in_a_fixed_order() -> None:
    lists = [["a", "b", "c"], ["c", "a"], ["d"]]
    fused = fuse(lists)
    assert [item for item, _ in fused] == ["a", "c", "d", "b"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert scores["c"] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert scores["d"] == pytest.approx(1 / (RRF_K + 1))
    assert scores["b"] == pytest.approx(1 / (RRF_K + 2))
    # the same input always gives the same output
    assert all(fuse(lists) == fused for _ in range(5))


def test_rrf_ties_go_to_the_better_rank_then_the_earlier_list() -> None:
    # x and y: rank 1 in one list each -> equal scores; x's list comes first
    assert [item for item, _ in fuse([["x"], ["y"]])] == ["x", "y"]
    assert [item for item, _ in fuse([["y"], ["x"]])] == ["y", "x"]
    # p and t tie at rank 1, r and s at rank 2: the earlier list wins each tie
    fused = fuse([["p", "r"], ["t", "s"]])
    assert [item for item, _ in fused] == ["p", "t", "r", "s"]
    # a repeat inside one list counts once, at its best place
    assert dict(fuse([["a", "a", "b"]]))["a"] == pytest.approx(1 / (RRF_K + 1))
    assert fuse([]) == []


def test_snippet_cuts_to_the_window_with_the_most_query_terms() -> None:
    text = "filler " * 300 + "the staging database listens on port 6543 since Tuesday " + "more " * 300
    cut = snippet(text, ["staging", "database", "6543"], max_chars=80)
    assert len(cut) <= 80
    assert "staging database listens on port 6543" in cut
    assert cut.startswith(ELLIPSIS)
    assert cut.endswith(ELLIPSIS)
    # a stem finds the inflected form
    assert "migrations" in snippet(
        "x " * 400 + "ran the migrations" + " y" * 400, ["migration"], max_chars=50
    )
    # a short text comes back whole, tidied (chunk separators gone, blank runs collapsed)
    assert snippet("[tool:bash] ls\n\x1f[result:bash]   a    b", ["bash"], max_chars=100) == (
        "[tool:bash] ls\n[result:bash] a b"
    )
    assert tidy("a\n\n\n  b\t\tc") == "a\nb c"
    # no term found: the start of the text
    assert snippet("abc " * 100, ["zzz"], max_chars=20).startswith("abc")


def test_within_budget_keeps_whole_texts_then_cuts_one_then_stops() -> None:
    texts = ["a" * 50, "b" * 50, "c" * 200, "d" * 10]
    kept = within_budget(texts, max_chars=200, min_piece=20)
    assert kept == ["a" * 50, "b" * 50, "c" * 99 + ELLIPSIS]
    assert sum(map(len, kept)) == 200
    # too little room left for a useful piece: stop without it
    assert within_budget(texts, max_chars=110, min_piece=20) == ["a" * 50, "b" * 50]
    assert within_budget([], max_chars=10) == []


# -- search_history on hand-built store lists -------------------------------------------------------------


def _message(n: int, text: str) -> MessageRecord:
    return MessageRecord(
        id=f"{n:032x}", session_id="s1", position=n, role="user", kind="human", text=text,
        content_hash="0" * 64, tokens=5, created_at=NOW + timedelta(minutes=n), distilled=True,
    )  # fmt: skip


def _distillation(n: int, text: str) -> DistillationRecord:
    return DistillationRecord(
        id=f"00000000-0000-4000-8000-{n:012d}", session_id="s1", project="p", generation=1, kind="reflector",
        observations=text, source_ids=("a",), source_tokens=5, token_count=5, r_compression=1.0,
        created_at=NOW, seq=n, archived=True,
    )  # fmt: skip


def _knowledge(n: int, text: str) -> KnowledgeRecord:
    return KnowledgeRecord(
        id=f"00000000-0000-7000-8000-{n:012d}", project=None, category="gotcha", title=f"entry {n}",
        content=text, confidence=0.9, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


@dataclass
class StubStore:
    """Returns hand-built ranked lists per query (by its terms) and records every search."""

    lists: dict[tuple[str, ...], list[MessageRecord | DistillationRecord | KnowledgeRecord]]
    searches: list[TextSearch] = field(default_factory=list)

    async def search_text(self, search: TextSearch) -> list[TextMatch]:
        self.searches.append(search)
        records = self.lists.get(search.terms, [])
        ranks: dict[type, int] = {}
        found = []
        for record in records:
            ranks[type(record)] = ranks.get(type(record), 0) + 1
            found.append(TextMatch(rank=ranks[type(record)], score=1.0, record=record))
        return found


async def test_search_history_fuses_sources_deterministically_and_labels_each_hit() -> None:
    m1, m2 = _message(1, "port 5433 chosen"), _message(2, "port talk")
    d1, k1 = _distillation(1, "picked port 5433"), _knowledge(1, "port 5433 for staging")
    store = StubStore({("port", "5433"): [m1, m2, d1, k1]})
    result = await search_history(store, "port 5433", session_id="s1", project="p")  # type: ignore[arg-type]
    # rank 1 of each source ties: message, then distillation, then knowledge (store order); then rank 2
    assert [hit.source for hit in result.hits] == [
        MessageSource(session_id="s1", message_id=m1.id, position=1, role="user", kind="human",
                      created_at=m1.created_at, distilled=True),
        DistillationSource(session_id="s1", distillation_id=d1.id, generation=1, seq=1, kind="reflector",
                           archived=True, created_at=NOW),
        KnowledgeSource(knowledge_id=k1.id, project=None, category="gotcha", title="entry 1", updated_at=NOW),
        MessageSource(session_id="s1", message_id=m2.id, position=2, role="user", kind="human",
                      created_at=m2.created_at, distilled=True),
    ]  # fmt: skip
    assert [hit.source_type for hit in result.hits] == ["message", "distillation", "knowledge", "message"]
    assert result.hits[2].text == "entry 1: port 5433 for staging"
    assert result.terms == ("port", "5433")
    assert result.queries == ("port 5433",)
    assert result.expansion == "off"
    assert result.omitted == 0
    (search,) = store.searches
    assert (search.session_id, search.project, search.limit) == ("s1", "p", 20)


async def test_search_history_respects_limit_and_the_character_budget() -> None:
    records = [_message(n, f"port {n} " + "detail " * 100) for n in range(8)]
    store = StubStore({("port",): list(records)})
    result = await search_history(
        store,  # type: ignore[arg-type]
        "port",
        session_id="s1",
        project="p",
        limit=6,
        max_chars=1_000,
        snippet_chars=300,
    )
    assert result.chars == sum(len(hit.text) for hit in result.hits) <= 1_000
    assert all(len(hit.text) <= 300 and hit.truncated for hit in result.hits)
    assert len(result.hits) == 4  # three 300-char snippets and one cut to the 100 left
    assert result.omitted == 2  # 6 ranked within the limit, 2 left out by the budget
    assert result.hits[-1].text.endswith(ELLIPSIS)


async def test_search_history_refuses_bad_arguments_and_skips_stop_word_queries() -> None:
    store = StubStore({})
    for bad in ({"limit": 0}, {"limit": 51}, {"scope": "galaxy"}):
        with pytest.raises(ConfigError):
            await search_history(store, "x", session_id="s1", project="p", **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await search_history(store, "   ", session_id="s1", project="p")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await search_history(store, "x", session_id="s1", project=None, scope="project")  # type: ignore[arg-type]
    result = await search_history(store, "what is it", session_id="s1", project="p")  # type: ignore[arg-type]
    assert result.hits == ()
    assert result.terms == ()
    assert store.searches == []

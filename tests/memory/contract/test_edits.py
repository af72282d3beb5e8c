"""The backend contract: pinning, moving and re-texting one record."""

from __future__ import annotations

import numpy as np
import pytest

from magray.errors import NotFoundError, UsageError
from magray.memory.backends import Backend
from magray.memory.records import Filters, Layer, NewRecord
from magray.memory.search.keywords import keyword_terms
from tests.fakes import HashEmbedder
from tests.memory.contract.conftest import NOW, Insert, vector


def test_update_pins_and_moves(backend: Backend, insert: Insert) -> None:
    (a,) = insert([NewRecord("the deploy key rotates monthly", layer=Layer.INTERACT)])
    backend.update(a.num, now=NOW + 5, pinned=True)
    row = backend.resolve(a.id).record
    assert row.pinned and row.updated_at == NOW + 5 and row.layer_since == NOW
    backend.update(a.num, now=NOW + 9, layer=Layer.ASSETS)
    row = backend.resolve(a.id).record
    assert row.layer is Layer.ASSETS and row.layer_since == NOW + 9 and row.pinned
    assert backend.count(Filters(layers=(Layer.INTERACT,))) == 0
    with pytest.raises(NotFoundError):
        backend.update(999_999, now=NOW, pinned=False)


def test_update_refuses_a_move_onto_a_twin(backend: Backend, insert: Insert) -> None:
    a, b = insert(
        [NewRecord("same text", layer=Layer.INTERACT), NewRecord("same text", layer=Layer.ASSETS)]
    )
    with pytest.raises(UsageError, match=b.id):
        backend.update(a.num, now=NOW, layer=Layer.ASSETS)
    assert backend.resolve(a.id).record.layer is Layer.INTERACT


def test_replace_text_follows_into_both_indexes(
    backend: Backend, insert: Insert, embedder: HashEmbedder
) -> None:
    (a,) = insert([NewRecord("the alpha release ships in may", layer=Layer.ASSETS, tags=("x",))])
    new = "the gamma release ships in june"
    backend.replace_text(a.num, new, vector(embedder, new), model_id=embedder.model_id, now=NOW + 1)
    row = backend.resolve(a.id).record
    assert row.text == new and row.tags == ("x",) and row.created_at == NOW
    assert [h.num for h in backend.keyword_search(keyword_terms("gamma"), Filters(), 5)] == [a.num]
    assert backend.keyword_search(keyword_terms("alpha"), Filters(), 5) == []
    qvec = np.asarray(embedder.embed_queries([new])[0], dtype=np.float32)
    assert backend.vector_search(Layer.ASSETS, qvec, 1, Filters())[0][0] == a.num
    (b,) = insert([NewRecord("another note", layer=Layer.ASSETS)])
    with pytest.raises(UsageError):
        backend.replace_text(b.num, new, vector(embedder, new), model_id=embedder.model_id, now=NOW)


def test_has_sessions(backend: Backend, insert: Insert) -> None:
    assert backend.has_sessions() is False
    insert([NewRecord("a note without a session")])
    assert backend.has_sessions() is False
    insert([NewRecord("a turn of a chat", session="conv-1")])
    assert backend.has_sessions() is True

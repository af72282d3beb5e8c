"""The derived HNSW vector index: upserts, recall, quantization, persistence, corruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magray.errors import DimensionMismatchError, IndexCorruptError, UsageError
from magray.memory.backends.sqlite import index_file
from magray.memory.backends.sqlite import vector_index as vi
from magray.memory.backends.sqlite.vector_index import VectorIndex, label_checksum

DIM = 32


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make(tmp_path: Path, n: int = 100, dtype: str = "f32", seed: int = 0) -> VectorIndex:
    index = VectorIndex.create(tmp_path / "l.usearch", model_id="m", dim=DIM, dtype=dtype)
    index.add(np.arange(n, dtype=np.int64), unit(n, seed=seed))
    return index


def reopen(path: Path, **kw: object) -> VectorIndex:
    args: dict[str, object] = {"model_id": "m", "dim": DIM, "dtype": "f32", "writable": False}
    args.update(kw)
    return VectorIndex.open(path, **args)  # type: ignore[arg-type]


def test_add_search_remove(tmp_path: Path) -> None:
    index = make(tmp_path)
    vecs = unit(100)
    labels, sims = index.search(vecs[3], 5)[0]
    assert labels[0] == 3 and sims[0] == pytest.approx(1.0, abs=1e-5)
    assert labels.dtype == np.int64 and sims.dtype == np.float32
    assert np.all(np.diff(sims) <= 1e-6)  # best first
    index.remove(np.array([3, 12345]))  # a missing label is ignored
    assert len(index) == 99 and 3 not in index
    assert 3 not in index.search(vecs[3], 10)[0][0]
    assert sorted(index.labels().tolist()) == [i for i in range(100) if i != 3]


def test_upsert_replaces_vector(tmp_path: Path) -> None:
    index = make(tmp_path)
    before = index.state.label_checksum
    vecs = unit(100)
    index.add(np.array([5]), vecs[70:71])
    assert len(index) == 100 and index.state.label_checksum == before
    labels, sims = index.search(vecs[70], 2)[0]
    assert set(labels.tolist()) == {5, 70} and sims[1] == pytest.approx(1.0, abs=1e-5)
    index.add(np.array([200, 200]), vecs[:2])  # the last vector of a repeated label wins
    assert len(index) == 101
    assert index.search(vecs[1], 3)[0][0][:2].tolist() in ([1, 200], [200, 1])


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_similarities_are_cosines_of_vectors_of_any_length(tmp_path: Path, dtype: str) -> None:
    """f32 and f16 files are searched by inner product: vectors are normalised on the way
    in, so lengths never change a similarity, before and after a save and reopen."""
    vecs = unit(50, seed=3)
    lengths = np.linspace(0.2, 5.0, 50, dtype=np.float32)[:, None]
    index = VectorIndex.create(tmp_path / "n.usearch", model_id="m", dim=DIM, dtype=dtype)
    index.add(np.arange(50), vecs * lengths)
    index.save()
    query = 7.0 * vecs[10] + 0.5 * vecs[11]
    cosines = vecs @ (query / np.linalg.norm(query))
    for idx in (index, reopen(index.path, dtype=dtype)):
        labels, sims = idx.search(query, 5)[0]
        assert labels.tolist() == np.argsort(-cosines)[:5].tolist()
        assert np.allclose(sims, cosines[labels], atol=2e-3)


def test_batch_queries_and_small_k(tmp_path: Path) -> None:
    index = make(tmp_path, n=20)
    out = index.search(unit(20)[:3], 50)  # k > count
    assert len(out) == 3 and all(len(labels) == 20 for labels, _ in out)
    assert [labels[0] for labels, _ in out] == [0, 1, 2]
    assert index.search(unit(20)[0], 0)[0][0].size == 0


def test_empty_index(tmp_path: Path) -> None:
    index = VectorIndex.create(tmp_path / "e.usearch", model_id="m", dim=DIM)
    labels, sims = index.search(unit(1)[0], 10)[0]
    assert labels.size == 0 and sims.size == 0
    index.save()
    assert len(reopen(tmp_path / "e.usearch")) == 0


def _recall(index: VectorIndex, data: np.ndarray, queries: np.ndarray) -> float:
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    found = index.search(queries, 10)
    return float(
        np.mean(
            [
                len(set(f.tolist()) & set(t.tolist())) / 10
                for (f, _), t in zip(found, truth, strict=True)
            ]
        )
    )


def test_recall_against_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedding-like data (clusters with a low intrinsic dimension) at the automatic ef."""
    from magray.bench.memory import synthesize

    monkeypatch.setattr(vi, "EXACT_LIMIT", 0)  # force the graph search
    synth = synthesize(5000, 64, queries=100)
    index = VectorIndex.create(tmp_path / "r.usearch", model_id="m", dim=64, dtype="f16")
    index.add(np.arange(5000), synth.vectors)
    assert _recall(index, synth.vectors, synth.query_vectors) >= 0.95


def test_recall_on_isotropic_data_with_fixed_ef(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hard case (uniform random vectors) needs a larger ef: ``memory.search_ef``."""
    monkeypatch.setattr(vi, "EXACT_LIMIT", 0)
    data, queries = unit(5000, 64, seed=1), unit(100, 64, seed=2)
    index = VectorIndex.create(tmp_path / "r.usearch", model_id="m", dim=64, dtype="f16")
    index.add(np.arange(5000), data)
    index.ef = 256
    assert _recall(index, data, queries) >= 0.95


@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_quantized_roundtrip_and_rescore(tmp_path: Path, dtype: str) -> None:
    data = unit(300)
    index = make(tmp_path, n=300, dtype=dtype)
    index.save()
    view = reopen(index.path, dtype=dtype)
    assert view.state.dtype == dtype and len(view) == 300
    k = 10
    fetch = view.candidates(k)
    assert fetch == (4 * k if dtype == "i8" else k)
    query = data[42]
    labels, sims = view.search(query, fetch)[0]
    rescored = labels[np.argsort(-(data[labels] @ query))][:k]
    assert rescored[0] == 42 and sims[0] == pytest.approx(1.0, abs=0.02)
    with pytest.raises(IndexCorruptError):
        reopen(index.path, dtype="f32")


def test_save_open_roundtrip(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.set_applied_seq(41)
    index.save()
    state = index.state
    assert state.file_sha256 and state.count == 100 and state.applied_seq == 41
    view = reopen(index.path)
    assert view.state == state and not view.writable
    assert view.search(unit(100)[9], 1)[0][0].tolist() == [9]
    with pytest.raises(UsageError):
        view.add(np.array([1]), unit(1))
    writer = reopen(index.path, writable=True)
    writer.remove([0, 1])
    writer.add([500], unit(1, seed=9))
    writer.save()
    again = reopen(index.path, verify=True)
    assert len(again) == 99 and again.state.label_checksum == label_checksum(again.labels())
    assert again.state.applied_seq == 41


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError):
        reopen(tmp_path / "nothing.usearch")
    index = make(tmp_path)
    index.save()
    index.path.unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        reopen(index.path)


def test_corrupted_file(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.save()
    raw = bytearray(index.path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    index.path.write_bytes(bytes(raw))
    for writable in (False, True):
        with pytest.raises(IndexCorruptError, match="does not match"):
            reopen(index.path, writable=writable)


def test_truncated_file(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.save()
    raw = index.path.read_bytes()
    index.path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(IndexCorruptError):
        reopen(index.path)
    # even a skipped hash cannot hide a truncated file: usearch refuses to map it
    with pytest.raises(IndexCorruptError):
        reopen(index.path, verify=False)


def test_unreadable_sidecar(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.save()
    sidecar = tmp_path / "l.usearch.json"
    sidecar.write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="unreadable"):
        reopen(index.path)


@pytest.mark.parametrize(
    ("field", "kw"), [("model_id", {"model_id": "other"}), ("dim", {"dim": 16})]
)
def test_sidecar_mismatch(tmp_path: Path, field: str, kw: dict[str, object]) -> None:
    index = make(tmp_path)
    index.save()
    with pytest.raises(IndexCorruptError, match="built for"):
        reopen(index.path, **kw)


def test_sidecar_edited_count_detected(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.save()
    sidecar = tmp_path / "l.usearch.json"
    doc = json.loads(sidecar.read_text(encoding="utf-8"))
    doc["count"] = 7
    sidecar.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="sidecar says"):
        reopen(index.path, verify=False)


def test_a_save_killed_before_its_sidecar_leaves_the_old_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make(tmp_path)
    index.save()
    before = index.path.read_bytes()
    index.add([7], unit(1, seed=5))  # upsert: same count, same labels, new file content

    def crash(path: Path, data: bytes) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(index_file, "write_atomic", crash)
    with pytest.raises(OSError, match="power cut"):
        index.save()  # the new file is staged, the old pair untouched
    assert index.path.read_bytes() == before
    assert len(reopen(index.path)) == 100
    assert index_file.staging(index.path).exists()
    reopen(index.path, writable=True)  # a writer drops the staged file no sidecar describes
    assert not index_file.staging(index.path).exists()


def test_a_save_killed_before_its_rename_is_finished_by_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make(tmp_path)
    index.save()
    index.add([7], unit(1, seed=5))
    index.add([500], unit(1, seed=6))
    real_replace = index_file.os.replace

    def crash(src: object, dst: object) -> None:
        if str(src).endswith(".saving"):
            raise OSError("power cut")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(index_file.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        index.save()  # the sidecar describes the staged file; the old file is in place
    monkeypatch.undo()
    with pytest.raises(IndexCorruptError, match="interrupted save"):
        reopen(index.path)  # a reader meets the half-saved pair: it cannot be trusted
    done = reopen(index.path, writable=True)  # the writer finishes the rename
    assert len(done) == 101 and 500 in done
    assert not index_file.staging(index.path).exists()
    assert len(reopen(index.path)) == 101


def test_copied_pair_still_opens(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.save()
    other = tmp_path / "copy"
    other.mkdir()
    (other / "l.usearch").write_bytes(index.path.read_bytes())
    (other / "l.usearch.json").write_bytes((tmp_path / "l.usearch.json").read_bytes())
    assert len(reopen(other / "l.usearch")) == 100  # new inode: hashed, and it matches


def test_reader_keeps_its_view_across_a_save(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.save()
    view = reopen(index.path)
    index.remove(np.arange(50))
    index.save()
    assert len(view) == 100 and view.search(unit(100)[0], 1)[0][0].tolist() == [0]
    assert len(reopen(index.path)) == 50


def test_bad_inputs(tmp_path: Path) -> None:
    index = make(tmp_path, n=5)
    with pytest.raises(DimensionMismatchError):
        index.add([1], unit(1, dim=8))
    with pytest.raises(DimensionMismatchError):
        index.search(unit(1, dim=8)[0], 3)
    with pytest.raises(UsageError):
        index.add([-1], unit(1))
    with pytest.raises(UsageError):
        index.add([1, 2], unit(1))
    with pytest.raises(UsageError):
        VectorIndex.create(tmp_path / "x", model_id="m", dim=DIM, dtype="f64")


def test_expansion_grows_with_size() -> None:
    efs = [vi.expansion_for(n, 10) for n in (10_000, 100_000, 1_000_000, 2**80)]
    assert efs == sorted(efs) and efs[-1] == vi.EF_MAX
    assert vi.expansion_for(10_000, 500) == 500  # never below k
    assert vi.expansion_for(100_000, 10, layers=3) < vi.expansion_for(100_000, 10)


labels_strategy = st.lists(st.integers(0, 2**63 - 1), unique=True, max_size=50)


@settings(max_examples=50, deadline=None)
@given(labels=labels_strategy, seed=st.integers(0, 2**32 - 1))
def test_label_checksum_order_independent(labels: list[int], seed: int) -> None:
    arr = np.asarray(labels, dtype=np.int64)
    shuffled = np.random.default_rng(seed).permutation(arr)
    assert label_checksum(arr) == label_checksum(shuffled)
    if labels:
        assert label_checksum(arr) != label_checksum(arr[1:])


@settings(max_examples=20, deadline=None)
@given(first=labels_strategy, second=labels_strategy)
def test_incremental_checksum_matches_recomputed(
    tmp_path_factory: pytest.TempPathFactory, first: list[int], second: list[int]
) -> None:
    path = tmp_path_factory.mktemp("h") / "h.usearch"
    index = VectorIndex.create(path, model_id="m", dim=8)
    index.add(first, unit(len(first), dim=8))
    index.add(second, unit(len(second), dim=8, seed=1))
    index.remove(first[::2])
    assert index.state.label_checksum == label_checksum(index.labels())
    assert index.state.count == len((set(first) | set(second)) - set(first[::2]))


def test_repeated_upserts_do_not_grow_the_file(tmp_path: Path) -> None:
    index = make(tmp_path, n=200)
    index.save()
    size = index.path.stat().st_size
    for seed in range(3):
        index.add(np.arange(200), unit(200, seed=seed + 10))
    index.save()
    assert index.path.stat().st_size == size and len(index) == 200


def test_opening_an_index_first_does_not_crash_the_embedding_runtime(tmp_path: Path) -> None:
    """Importing onnxruntime after usearch's SIMD library used to kill the process."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from magray.memory.backends.sqlite.vector_index import VectorIndex\n"
        f"idx = VectorIndex.create(Path({str(tmp_path / 'x.usearch')!r}), model_id='m', dim=4)\n"
        "idx.add(np.arange(2), np.eye(2, 4, dtype=np.float32))\n"
        "import onnxruntime\n"
        "print('ok', onnxruntime.get_device())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")

"""The lifecycle writes of the SQLite backend: promotion, merging, expiry and their logs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from magray.memory.backends.base import (
    ArchivedHistory,
    Expiry,
    LifecycleEntry,
    Promotion,
    StoredRow,
)
from magray.memory.backends.sqlite import access_stats
from magray.memory.backends.sqlite.rows import RECORD_COLUMNS, STATS_JOIN, row_to_record
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Layer


def access_times(store: Store) -> dict[int, list[float]]:
    return access_stats.access_times(store.conn)


def live_records(store: Store, layers: Sequence[Layer]) -> list[StoredRow]:
    if not layers:
        return []
    marks = ",".join("?" * len(layers))
    rows = store.conn.execute(
        f"SELECT {RECORD_COLUMNS} FROM records r{STATS_JOIN} WHERE r.layer IN ({marks})"
        " ORDER BY r.num",
        [str(x) for x in layers],
    ).fetchall()
    return [row_to_record(r) for r in rows]


def archived_histories(store: Store) -> list[ArchivedHistory]:
    out: list[ArchivedHistory] = []
    for rid, layer, created, since, importance, pinned, times, at in store.conn.execute(
        "SELECT record_id, layer, created_at, layer_since, importance, pinned, access_times,"
        " archived_at FROM history_archive ORDER BY archived_at, record_id"
    ):
        try:
            parsed = json.loads(times)
        except (TypeError, ValueError, RecursionError):
            parsed = []
        ordered = tuple(sorted(float(t) for t in parsed if isinstance(t, int | float)))
        out.append(
            ArchivedHistory(
                str(rid),
                Layer(layer),
                float(created),
                float(since),
                float(importance),
                bool(pinned),
                ordered,
                float(at),
            )
        )
    return out


def _log(conn: Any, now: float, record_id: str, action: str, src: Layer, **more: Any) -> None:
    conn.execute(
        "INSERT INTO lifecycle_log (at, record_id, action, from_layer, to_layer, score, reasons)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            record_id,
            action,
            str(src),
            None if more.get("to") is None else str(more["to"]),
            more.get("score"),
            json.dumps(list(more.get("reasons", ())), ensure_ascii=False),
        ),
    )


def promote(
    store: Store,
    scores: Mapping[str, float],
    promotions: Sequence[Promotion],
    now: float,
    meta: Mapping[str, str],
) -> list[str]:
    actions: list[str] = []
    store.fold_accesses()  # in short steps first: the fold inside the write is then short
    with store.write() as conn:
        access_stats.fold(conn)  # a merge moves the history: all of it in one table
        for key, value in meta.items():
            Store.set_meta(conn, key, value)
        conn.executemany(
            "UPDATE records SET promotion_score = ? WHERE id = ?",
            [(score, rid) for rid, score in scores.items()],
        )
        for p in promotions:
            row = conn.execute(
                "SELECT layer, project, content_hash, pinned, importance FROM records"
                " WHERE num = ?",
                (p.num,),
            ).fetchone()
            if row is None:
                actions.append("gone")
                continue
            layer, project, chash, pinned, importance = row
            twin = conn.execute(
                "SELECT num FROM records WHERE layer = ? AND project = ? AND content_hash = ?",
                (str(p.to_layer), project, chash),
            ).fetchone()
            if twin is not None:
                action = "merge"
                conn.execute(
                    "UPDATE records SET pinned = MAX(pinned, ?), importance = MAX(importance, ?)"
                    " WHERE num = ?",
                    (pinned, importance, twin[0]),
                )
                stats = conn.execute(
                    "SELECT access_count, last_access_at FROM record_stats WHERE num = ?",
                    (p.num,),
                ).fetchone()
                if stats is not None:  # a value no MAGRAY writes adds nothing
                    count, last = stats
                    count = count if type(count) is int and count > 0 else 0
                    last = last if type(last) is float and math.isfinite(last) else None
                    access_stats.add(conn, twin[0], count, last)
                access_stats.merge(conn, p.num, twin[0])
                conn.execute("DELETE FROM records WHERE num = ?", (p.num,))
            else:
                action = "promote"
                conn.execute(
                    "UPDATE records SET layer = ?, layer_since = ?, updated_at = ? WHERE num = ?",
                    (str(p.to_layer), now, now, p.num),
                )
            _log(conn, now, p.record_id, action, Layer(layer), to=p.to_layer, score=p.score,
                 reasons=p.reasons)  # fmt: skip
            actions.append(action)
    return actions


def expire(store: Store, expiries: Sequence[Expiry], now: float) -> int:
    if not expiries:
        return 0
    deleted = 0
    store.fold_accesses()
    with store.write() as conn:
        access_stats.fold(conn)
        for e in expiries:
            row = conn.execute(
                "SELECT id, layer, created_at, layer_since, importance, pinned FROM records"
                " WHERE num = ?",
                (e.num,),
            ).fetchone()
            if row is None:
                continue
            rid, layer, created, since, importance, pinned = row
            conn.execute(
                "INSERT OR REPLACE INTO history_archive (record_id, layer, created_at,"
                " layer_since, importance, pinned, access_times, archived_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, layer, created, since, importance, pinned,
                 json.dumps(access_stats.times_of(conn, e.num)), now),
            )  # fmt: skip
            conn.execute("DELETE FROM records WHERE num = ?", (e.num,))
            _log(conn, now, rid, "expire", Layer(layer), reasons=(e.reason,))
            deleted += 1
    return deleted


def lifecycle_log(store: Store) -> list[LifecycleEntry]:
    out: list[LifecycleEntry] = []
    for at, rid, action, src, dst, score, reasons in store.conn.execute(
        "SELECT at, record_id, action, from_layer, to_layer, score, reasons FROM lifecycle_log"
        " ORDER BY rowid"
    ):
        try:
            parsed = json.loads(reasons) if reasons else []
        except (TypeError, ValueError, RecursionError):
            parsed = []
        out.append(
            LifecycleEntry(
                float(at),
                str(rid),
                str(action),
                Layer(src),
                None if dst is None else Layer(dst),
                None if score is None else float(score),
                tuple(str(r) for r in parsed) if isinstance(parsed, list) else (),
            )
        )
    return out

"""Lifecycle of the PostgreSQL backend: access history, promotion, expiry and their log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from magray.memory.backends.base import (
    ArchivedHistory,
    Expiry,
    LifecycleEntry,
    Promotion,
    StoredRow,
)
from magray.memory.backends.postgres import access
from magray.memory.backends.postgres.core import (
    BUMP,
    COLUMNS,
    RECORDS,
    Core,
    reasons_json,
    reasons_of,
    to_row,
)
from magray.memory.records import Layer


class LifecycleMixin(Core):
    def access_times(self) -> dict[int, list[float]]:
        with self._read() as conn:
            return access.kept_times(conn)

    def live_records(self, layers: Sequence[Layer]) -> list[StoredRow]:
        if not layers:
            return []
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {RECORDS} WHERE r.layer = ANY(%s) ORDER BY r.num",
                ([str(layer) for layer in layers],),
            ).fetchall()
        return [to_row(r) for r in rows]

    def archived_histories(self) -> list[ArchivedHistory]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT record_id, layer, created_at, layer_since, importance, pinned,"
                " access_times, archived_at FROM history_archive ORDER BY record_id"
            ).fetchall()
        return [
            ArchivedHistory(
                record_id=str(rid),
                layer=Layer(layer),
                created_at=float(created),
                layer_since=float(since),
                importance=float(importance),
                pinned=bool(pinned),
                access_times=tuple(sorted(float(t) for t in times or ())),
                archived_at=float(archived),
            )
            for rid, layer, created, since, importance, pinned, times, archived in rows
        ]

    def promote(
        self,
        scores: Mapping[str, float],
        promotions: Sequence[Promotion],
        *,
        now: float,
        meta: Mapping[str, str] | None = None,
    ) -> list[str]:
        actions: list[str] = []
        with self._write() as conn:
            conn.execute(access.FOLD_LOCKED)  # the history in one table
            for key, value in (meta or {}).items():
                self._set_meta(conn, key, value)
            if scores:
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE records SET promotion_score = %s WHERE id = %s",
                        [(score, rid) for rid, score in scores.items()],
                    )
            for p in promotions:
                src = conn.execute(
                    "SELECT layer, project, content_hash, COALESCE((SELECT access_count FROM"
                    " record_stats WHERE num = %s), 0), pinned, importance"
                    " FROM records WHERE num = %s FOR UPDATE",
                    (p.num, p.num),
                ).fetchone()
                if src is None:
                    actions.append("gone")
                    continue
                from_layer, project, chash, count, pinned, importance = src
                twin = conn.execute(
                    "SELECT num FROM records WHERE layer = %s AND project = %s"
                    " AND content_hash = %s FOR UPDATE",
                    (str(p.to_layer), project, chash),
                ).fetchone()
                action = "promote"
                if twin is not None:
                    action = "merge"
                    conn.execute(
                        "UPDATE records SET pinned = pinned OR %s,"
                        " importance = GREATEST(importance, %s) WHERE num = %s",
                        (pinned, importance, twin[0]),
                    )
                    last = conn.execute(
                        "SELECT last_access_at FROM record_stats WHERE num = %s", (p.num,)
                    ).fetchone()
                    conn.execute(BUMP, (twin[0], count, last[0] if last else None))
                    conn.execute(access.MOVE, (twin[0], p.num))
                    conn.execute("DELETE FROM records WHERE num = %s", (p.num,))
                else:
                    conn.execute(
                        "UPDATE records SET layer = %s, layer_since = %s, updated_at = %s"
                        " WHERE num = %s",
                        (str(p.to_layer), now, now, p.num),
                    )
                conn.execute(
                    "INSERT INTO lifecycle_log (at, record_id, action, from_layer, to_layer,"
                    " score, reasons) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        now,
                        p.record_id,
                        action,
                        from_layer,
                        str(p.to_layer),
                        p.score,
                        reasons_json(p.reasons),
                    ),
                )
                actions.append(action)
        return actions

    def expire(self, expiries: Sequence[Expiry], *, now: float) -> int:
        deleted = 0
        with self._write() as conn:
            conn.execute(access.FOLD_LOCKED)  # the history in one table
            for e in expiries:
                row = conn.execute(
                    "SELECT id, layer, created_at, layer_since, importance, pinned"
                    " FROM records WHERE num = %s FOR UPDATE",
                    (e.num,),
                ).fetchone()
                if row is None:
                    continue
                rid, layer, created, since, importance, pinned = row
                conn.execute(
                    "INSERT INTO history_archive (record_id, layer, created_at, layer_since,"
                    " importance, pinned, access_times, archived_at) VALUES (%s, %s, %s, %s,"
                    " %s, %s, COALESCE((SELECT times FROM access_history WHERE num = %s),"
                    " '{}'), %s) ON CONFLICT (record_id) DO UPDATE SET"
                    " layer = excluded.layer, created_at = excluded.created_at,"
                    " layer_since = excluded.layer_since, importance = excluded.importance,"
                    " pinned = excluded.pinned, access_times = excluded.access_times,"
                    " archived_at = excluded.archived_at",
                    (rid, layer, created, since, importance, pinned, e.num, now),
                )
                conn.execute("DELETE FROM records WHERE num = %s", (e.num,))
                conn.execute(
                    "INSERT INTO lifecycle_log (at, record_id, action, from_layer, reasons)"
                    " VALUES (%s, %s, 'expire', %s, %s)",
                    (now, rid, layer, reasons_json([e.reason])),
                )
                deleted += 1
        return deleted

    def lifecycle_log(self) -> list[LifecycleEntry]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT at, record_id, action, from_layer, to_layer, score, reasons"
                " FROM lifecycle_log ORDER BY seq"
            ).fetchall()
        return [
            LifecycleEntry(
                at=float(at),
                record_id=str(rid),
                action=str(action),
                from_layer=Layer(frm),
                to_layer=Layer(to) if to else None,
                score=None if score is None else float(score),
                reasons=reasons_of(reasons),
            )
            for at, rid, action, frm, to, score, reasons in rows
        ]

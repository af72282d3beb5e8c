"""The server under load: a real `magray serve` app on loopback, wrk in another process.

    .venv/bin/python benchmarks/server.py --n 100000 --connections 100 --seconds 20

Builds a tenant store of N synthetic records (clustered 384-d vectors, Zipf texts; the same
generator as `magray bench memory`) in a throw-away home, starts the server in a separate
process (uvicorn, JSON logs at warning level), and drives POST /v1/memories/search (k 10,
hybrid: vector + BM25 fusion) with wrk at C concurrent connections, per mode:

* ``cached``: query embeddings come from a table (the embedding cache's best case), so the
  figures are the server's and the memory's own;
* ``embed``: the real default model (ONNX) embeds every query, without the cache;
* ``fixed`` (only when asked for, ``--modes cached,fixed``): every recall answers the hits
  of the first one, so what is left is the server's own cost per search (HTTP, key check,
  validation, threads, JSON, metrics).

With ``--rates 1000``, each mode is also driven open-loop (`magray.bench.openloop`): the
same searches due at a fixed rate over the same connections, each latency from the moment
its request was due, which is what a client waits at that rate (wrk's closed loop measures
the most the server answers, and its latencies there are the queue's).

Prints one JSON object: requests/s, p50/p99 latency, errors, per mode. Needs `wrk`
(Debian: apt-get install wrk) and, for ``embed``, the default model installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from magray.bench.memory import TableEmbedder, bench_settings, synthesize  # noqa: E402

DIM = 384
TENANT = "bench"


def home_settings(home: Path) -> Any:
    """The bench home's settings, with the models of the user's own home."""
    import dataclasses

    from magray.paths import resolve_paths

    base = bench_settings(home)
    paths = dataclasses.replace(base.paths, models_dir=resolve_paths().models_dir)
    return dataclasses.replace(base, paths=paths)


def settings_for(home: Path) -> Any:
    from magray.server.tenants import tenant_settings

    return tenant_settings(home_settings(home), TENANT)


def real_model_id(home: Path) -> str:
    from magray.embed import load_embedder

    return load_embedder(home_settings(home), cached=False).model_id


def build_store(home: Path, n: int, model_id: str, queries: int) -> dict[str, Any]:
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory

    data = synthesize(n, DIM, queries)
    table = dict(zip(data.texts, data.vectors, strict=True))
    embedder = TableEmbedder(model_id, DIM, table)
    items = [
        NewRecord(text=t, layer=layer, kind="note")
        for t, layer in zip(data.texts, data.layers, strict=True)
    ]
    started = time.perf_counter()
    with Memory(settings_for(home), embedder=embedder) as memory:
        for i in range(0, n, 2000):
            memory.remember_many(items[i : i + 2000])
        memory.sync_indexes()
    np.savez(
        home / "queries.npz",
        texts=np.asarray(data.query_texts),
        vectors=data.query_vectors,
    )
    return {"build_s": round(time.perf_counter() - started, 1), "queries": data.query_texts}


def serve(home: Path, port: int, mode: str, workers: int, loop: str, http: str) -> None:
    """The server process: the app over the bench home, cached or real query embeddings."""
    os.environ["MAGRAY_BENCH_HOME"] = str(home)
    os.environ["MAGRAY_BENCH_MODE"] = mode
    import uvicorn

    from magray.server.workers import serve_workers

    sys.path.insert(0, str(Path(__file__).parent))
    options = {
        "app": "server:factory",
        "factory": True,
        "loop": loop,
        "http": http,
        "log_config": None,
        "access_log": False,
    }
    if workers == 1 or os.environ.get("MAGRAY_BENCH_SHARED_SOCKET"):  # uvicorn's own workers
        uvicorn.run(**options, host="127.0.0.1", port=port, workers=workers)  # type: ignore[arg-type]
    else:  # as `magray serve --workers N` runs them: each worker on its own socket
        sys.exit(serve_workers(options, "127.0.0.1", port, workers))


def factory() -> Any:
    import logging

    from magray.observability.logs import configure_json_logs
    from magray.server.app import create_app

    configure_json_logs(level=logging.WARNING)
    home = Path(os.environ["MAGRAY_BENCH_HOME"])
    limits: dict[str, Any] = {
        "server.rate": 1e9,
        "server.burst": 10**9,
        "server.queue_size": 10_000,
    }
    if os.environ.get("MAGRAY_BENCH_READERS"):
        limits["server.readers"] = int(os.environ["MAGRAY_BENCH_READERS"])
    base = home_settings(home).with_overrides(limits, "bench")
    if os.environ["MAGRAY_BENCH_MODE"] == "fixed":
        fixed_recall()
    if os.environ["MAGRAY_BENCH_MODE"] in ("cached", "fixed"):
        q = np.load(home / "queries.npz")
        table = dict(zip([str(t) for t in q["texts"]], q["vectors"], strict=True))
        embedder: Any = TableEmbedder(real_model_id(home), DIM, table)
    else:
        from magray.embed import load_embedder

        embedder = load_embedder(base, cached=False)
    return create_app(base, embedder=embedder)


def fixed_recall() -> None:
    """Every recall answers the hits of the first one: what is left is the server's cost."""
    from magray.server.tenants import Tenant

    real = Tenant.recall
    first: list[Any] = []

    def recall(self: Tenant, query: Any) -> Any:
        if not first:
            first.append(real(self, query))
        return first[0]

    Tenant.recall = recall  # type: ignore[method-assign]


def direct_baseline(home: Path, model_id: str, queries: list[str], mode: str) -> dict[str, Any]:
    """The named baseline: the same recalls in-process, one at a time, no HTTP."""
    from magray.memory.records import Query, SearchMode
    from magray.memory.service import Memory

    q = np.load(home / "queries.npz")
    table = dict(zip([str(t) for t in q["texts"]], q["vectors"], strict=True))
    times: list[float] = []
    with Memory(settings_for(home), embedder=TableEmbedder(model_id, DIM, table)) as memory:
        memory.recall(Query(text=queries[0], mode=SearchMode(mode)))
        cpu = time.process_time()
        for text in queries[:200]:
            t = time.perf_counter()
            memory.recall(Query(text=text, k=10, mode=SearchMode(mode)))
            times.append(time.perf_counter() - t)
        cpu = time.process_time() - cpu
    ms = np.asarray(times) * 1000
    return {
        "recalls_per_s": round(len(times) / sum(times), 1),
        "cpu_ms_per_recall": round(cpu * 1000 / len(times), 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the server exited before answering /healthz")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not answer /healthz")
        time.sleep(0.2)


WRK_LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/memories/search",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(key)s"}, bodies[i])
end
"""


def parse_wrk(out: str) -> dict[str, Any]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "requests": int(total.group(1)) if total else 0,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": round(ms(dist["50"]), 2),
        "p99_ms": round(ms(dist["99"]), 2),
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its descendants so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0.0))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == p)
    return total


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of ``pid``'s main thread: with one worker, uvicorn's event loop (HTTP, the
    key check, validation, JSON, metrics); the recall runs on other threads."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (wrk's, once it has been waited for)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_mode(home: Path, mode: str, key: str, queries: list[str], opts: Any) -> dict[str, Any]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_WAIT_POLICY": "PASSIVE"}
    if opts.readers is not None:
        env["MAGRAY_BENCH_READERS"] = str(opts.readers)
    if opts.shared_socket:
        env["MAGRAY_BENCH_SHARED_SOCKET"] = "1"
    cmd = [sys.executable, __file__, "serve", str(home), str(port), mode, str(opts.workers)]
    cmd += [opts.loop, opts.http]
    with (home / f"serve-{mode}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        bodies = home / "bodies.jsonl"
        bodies.write_text(
            "".join(json.dumps({"query": q, "k": 10, "mode": opts.mode}) + "\n" for q in queries),
            "utf-8",
        )
        script = home / "search.lua"
        script.write_text(WRK_LUA % {"bodies": bodies, "key": key}, "utf-8")
        warm = ["wrk", "-t1", "-c4", "-d3s", "-s", str(script), url]
        subprocess.run(warm, capture_output=True, check=True)
        cmd_wrk = [
            "wrk",
            f"-t{opts.threads}",
            f"-c{opts.connections}",
            f"-d{opts.seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ]
        cpu, loop_cpu = cpu_seconds(proc.pid), main_thread_cpu(proc.pid)
        wrk_cpu = _children_cpu()
        out = subprocess.run(cmd_wrk, capture_output=True, text=True, check=True).stdout
        wrk_cpu = _children_cpu() - wrk_cpu
        cpu, loop_cpu = cpu_seconds(proc.pid) - cpu, main_thread_cpu(proc.pid) - loop_cpu
        (home / f"wrk-{mode}.txt").write_text(out, "utf-8")
        print(out, file=sys.stderr)
        result = parse_wrk(out)
        # the server's own CPU per request: steadier than requests/s on shared cores
        result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(1, result["requests"]), 2)
        if opts.workers == 1:  # the event loop's share of it (the rest: recall threads)
            result["loop_cpu_ms_per_request"] = round(
                loop_cpu * 1000 / max(1, result["requests"]), 2
            )
        # the load generator's own, on the same cores
        result["wrk_cpu_ms_per_request"] = round(wrk_cpu * 1000 / max(1, result["requests"]), 3)
        if opts.rates:  # open loop: latency at fixed rates, from when each request was due
            result["open_loop"] = [
                open_loop(url, bodies, key, rate, opts) for rate in opts.rates.split(",")
            ]
        if mode == "cached":  # the HTTP floor: the same load on GET /healthz (no work)
            floor = [*cmd_wrk[:-3], url + "/healthz"]
            out = subprocess.run(floor, capture_output=True, text=True, check=True).stdout
            result["healthz_floor"] = parse_wrk(out)
        return result
    finally:
        proc.terminate()
        proc.wait(60)


def open_loop(url: str, bodies: Path, key: str, rate: str, opts: Any) -> dict[str, Any]:
    """The same searches at ``rate`` requests/s over the same connections, from another
    process (`magray.bench.openloop`): what a client waits at that rate."""
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "magray.bench.openloop", "--url", url + "/v1/memories/search"]
    cmd += ["--rate", rate, "--connections", str(opts.connections)]
    cmd += ["--seconds", str(opts.seconds), "--bodies", str(bodies)]
    cmd += ["--header", f"Authorization: Bearer {key}"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": path}
    ).stdout
    print(out, file=sys.stderr)
    result: dict[str, Any] = json.loads(out)
    return result


def prepared(home: Path, n: int, model_id: str) -> dict[str, Any]:
    """The store, queries and reader key of ``home``: built once, reused while N matches."""
    from magray.server.keys import KeyStore, Role, keys_file

    meta = home / "bench.json"
    if meta.exists():
        data: dict[str, Any] = json.loads(meta.read_text("utf-8"))
        if data.get("n") == n and data.get("model_id") == model_id:
            data["build_s"] = 0.0  # reused
            return data
        sys.exit(f"{home} holds a bench of another size or model; pick an empty --home.")
    built = build_store(home, n, model_id, queries=1000)
    _, key = KeyStore(keys_file(bench_settings(home).paths.data_dir)).create(Role.READER, TENANT)
    data = {"n": n, "model_id": model_id, "key": key, **built}
    meta.write_text(json.dumps(data), "utf-8")
    return data


def bench(home: Path, opts: Any) -> dict[str, Any]:
    model_id = real_model_id(home)
    built = prepared(home, opts.n, model_id)
    report: dict[str, Any] = {
        "n": opts.n,
        "connections": opts.connections,
        "seconds": opts.seconds,
        "workers": opts.workers,
        "shared_socket": opts.shared_socket,
        "readers": opts.readers,
        "loop": opts.loop,
        "http": opts.http,
        "cpus": os.cpu_count(),
        "build_s": built["build_s"],
        "route": f"POST /v1/memories/search k=10 {opts.mode}",
        "load_average": os.getloadavg()[0],
        "baseline_in_process": direct_baseline(home, model_id, built["queries"], opts.mode),
    }
    for mode in opts.modes.split(","):
        report[mode] = run_mode(home, mode, built["key"], built["queries"], opts)
    report["load_average_after"] = os.getloadavg()[0]
    return report


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), *sys.argv[6:8])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="records in the store")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--readers", type=int, help="server.readers: read-only handles per tenant (default 2)"
    )
    parser.add_argument(
        "--loop", default="auto", choices=["auto", "asyncio", "uvloop"], help="uvicorn's loop"
    )
    parser.add_argument(
        "--http", default="auto", choices=["auto", "h11", "httptools"], help="uvicorn's HTTP"
    )
    parser.add_argument(
        "--shared-socket",
        action="store_true",
        help="the baseline of `magray serve`'s workers: uvicorn's own, accepting from one socket",
    )
    parser.add_argument("--modes", default="cached,embed")
    parser.add_argument(
        "--rates",
        help="also drive each mode open-loop at these requests/s (comma-separated), e.g. 1000",
    )
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "vector", "keyword"])
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the bench home here: built on the first run, reused by later ones",
    )
    opts = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/server.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="magray-bench-server-") as tmp:
        home = opts.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        report = bench(home, opts)
    print(json.dumps(report))


if __name__ == "__main__":
    main()

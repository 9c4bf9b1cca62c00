"""Benchmark: one LLM-heavy pipeline step (s02 entity extraction) at scale.

A synthetic configuration of N seed domains (s01 records them without a model call)
and `domains_per_batch: 1` gives N independent s02 calls, keyed `s02/batch-NNN`.
Each is answered by the replay server, in its own process, from a generated,
scripted cassette after an injected latency L. The pipeline runs as it would for a
user: `agentskiller run --until s02` in a fresh child process per N, against a
`prefect server start` that this benchmark starts on 127.0.0.1 and stops by pid.

    python -m benchmarks.scale --items 200 2000 --latency 0.2 --concurrency 16 \
        --json out.json

Per N it reports the s02 wall time (the run report's step seconds), the ideal
N*L/C, efficiency = ideal / wall, the peak RSS of the orchestrating process (its
VmHWM, read while it runs), its CPU time per item, the growth from the first to the
last N, and a second, cached run (zero calls).

With `--executor work_pool` the items run on a process work pool with `--workers`
workers (each `prefect worker start --limit 1`) that this benchmark creates and
deploys to (`prefect.yaml`'s item-batch deployment) and stops by process group:
each worker runs one batch of ceil(N / workers) items (at most 500) at a time,
with C / workers model calls in flight, so the whole run still has C. The API
server's CPU time (its process tree, from /proc) is reported per item too.

    python -m benchmarks.scale --items 200 2000 --executor work_pool --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
API_KEY_ENV = "BENCH_API_KEY"
S01 = "s01_domain_expansion"
S02 = "s02_entity_extraction"
SERVER_START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
POOL = "agentskiller-bench"


def domain_name(index: int) -> str:
    """A valid, distinct domain slug for item `index`."""
    return f"bench_domain_{index:05d}"


def _letters(index: int) -> str:
    """`index` written in letters (0 -> "Aa"), so entity names stay PascalCase."""
    digits = ""
    value = index
    for _ in range(4):
        value, rest = divmod(value, 26)
        digits = chr(ord("a") + rest) + digits
    return digits.capitalize()


def scripted_answer(index: int) -> dict[str, object]:
    """A valid s02 answer for the batch holding only `domain_name(index)`."""
    domain = domain_name(index)
    tag = _letters(index)
    member = f"Member{tag}"
    order = f"Order{tag}"
    return {
        "subfields": [f"subfield {tag.lower()} one", f"subfield {tag.lower()} two"],
        "entities": [
            {
                "name": member,
                "description": f"A person served in {domain}.",
                "is_person": True,
                "primary_key": "member_id",
                "domains": [domain],
                "attributes": [
                    {"name": "member_id", "type": "string", "description": "Id"},
                    {"name": "full_name", "type": "string", "description": "Name"},
                    {"name": "email", "type": "string", "description": "Email"},
                ],
            },
            {
                "name": order,
                "description": f"An order placed in {domain}.",
                "is_person": False,
                "primary_key": "order_id",
                "domains": [domain],
                "attributes": [
                    {"name": "order_id", "type": "string", "description": "Id"},
                    {"name": "total", "type": "number", "description": "Amount"},
                    {
                        "name": "status",
                        "type": "enum",
                        "enum": ["open", "closed"],
                        "description": "State",
                    },
                ],
            },
        ],
    }


def write_cassette(path: Path, n: int) -> None:
    """A scripted YAML cassette (written as JSON, which YAML reads) for N batches."""
    document = {
        "version": 1,
        "scripted": True,
        "description": "scripted benchmark answers for s02 (not real model output)",
        "calls": {
            f"s02/batch-{i:03d}": [{"tool_arguments": scripted_answer(i)}]
            for i in range(n)
        },
    }
    path.write_text(json.dumps(document), encoding="utf-8")


def write_config(
    path: Path,
    *,
    n: int,
    url: str,
    concurrency: int,
    in_flight: int,
    workers: int = 0,
) -> None:
    """The demo configuration, live against the replay server, with N seeds,
    `concurrency` model calls and `in_flight` items at once; with `workers`, the
    items go to the benchmark's work pool, shared out evenly."""
    config = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config["run"]["name"] = f"bench-scale-{n}"
    config["run"]["max_concurrency"] = in_flight
    llm = config["llm"]
    llm["mode"] = "live"
    llm.pop("cassette", None)
    llm["max_concurrency"] = concurrency
    if workers:
        config["run"]["max_concurrency"] = max(1, in_flight // workers)
        llm["max_concurrency"] = max(1, concurrency // workers)
        config["run"]["executor"] = "work_pool"
        config["run"]["work_pool"] = {
            "name": POOL,
            "deployment": "agentskiller-items/items",
            "batch_size": min(500, max(1, -(-n // workers))),
            "poll_interval_s": 0.5,
        }
    for role in llm["roles"].values():
        role["base_url"] = url
        role["api_key_env"] = API_KEY_ENV
    steps = config["steps"]
    steps["s01_domain_expansion"]["seed_domains"] = [domain_name(i) for i in range(n)]
    steps["s01_domain_expansion"]["target_domain_number"] = n
    steps["s02_entity_extraction"]["domains_per_batch"] = 1
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process this benchmark started, by its pid, with a timeout."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def prefect_server(log: Path) -> Iterator[tuple[str, int]]:
    """A `prefect server start` on 127.0.0.1; yields its API URL and pid."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env["PREFECT_UI_API_URL"] = api
    prefect = Path(sys.executable).parent / "prefect"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(prefect),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited early; see {log}")
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not answer in time; see {log}")
            time.sleep(0.5)
        yield api, proc.pid
    finally:
        _stop(proc)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a live process and its live descendants,
    from /proc (the Prefect server runs its API in a child process)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


@contextlib.contextmanager
def work_pool(api: str, work: Path, workers: int) -> Iterator[list[str]]:
    """A process work pool on `api` with the item deployment and `workers` workers
    (one batch at a time each); yields their names. Workers are stopped by
    process group, SIGKILL after a timeout."""
    env = dict(
        os.environ, PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    env |= {"AGENTSKILLER_HOME": str(ROOT), "PREFECT_WORKER_QUERY_SECONDS": "1"}
    env[API_KEY_ENV] = "bench-not-a-secret"
    prefect = str(Path(sys.executable).parent / "prefect")

    def run(*args: str) -> None:
        subprocess.run(
            [prefect, *args], env=env, cwd=ROOT, check=True, capture_output=True
        )

    run("work-pool", "create", POOL, "--type", "process", "--overwrite")
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in spec["deployments"]:
        deployment["work_pool"]["name"] = POOL
    deploy = work / "prefect.yaml"
    deploy.write_text(yaml.safe_dump(spec), encoding="utf-8")
    run("deploy", "--prefect-file", str(deploy), "--name", "items")
    procs: list[subprocess.Popen] = []
    names = [f"bench-worker-{i + 1}" for i in range(workers)]
    try:
        for name in names:
            with (work / f"{name}.log").open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [prefect, "worker", "start", "--pool", POOL, "--type"]
                        + ["process", "--name", name, "--limit", "1"],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env | {"AGENTSKILLER_WORKER_NAME": name},
                        cwd=ROOT,
                        start_new_session=True,
                    )
                )
        yield names
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def replay_server(cassette: Path, latency: float) -> Iterator[tuple[str, int]]:
    """The replay server in its own process; yields its base URL and pid."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasks.llm.replay_server",
            "--cassette",
            str(cassette),
            "--port",
            "0",
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if " at http" not in line:
            raise RuntimeError(f"replay server did not start: {line!r}")
        yield line.rsplit(" at ", 1)[1].strip(), proc.pid
    finally:
        _stop(proc)


def _peak_rss_mib(pid: int) -> float | None:
    """A live process's peak resident set (VmHWM), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_child(
    config: Path,
    output: Path,
    report: Path,
    api: str,
    log: Path,
    profile: Path | None,
) -> tuple[dict, float, float, float]:
    """One `agentskiller run --until s02`; returns its report, the child's wall
    time, the orchestrating process's peak RSS in MiB (its VmHWM, read while it
    runs) and the child's CPU seconds (user + system, its own children included;
    a work pool's workers are not its children)."""
    env = dict(
        os.environ, PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    env[API_KEY_ENV] = "bench-not-a-secret"
    args = ["run", "--config", str(config), "--output-dir", str(output)]
    args += ["--until", "s02", "--report-json", str(report)]
    if profile is None:
        command = [str(Path(sys.executable).parent / "agentskiller"), *args]
    elif spy := shutil.which("py-spy") or shutil.which(
        "py-spy", path=str(Path(sys.executable).parent)
    ):
        # Sampled, every thread (items run in worker threads, which cProfile
        # does not see), only while holding the GIL; collapsed stacks.
        command = [spy, "record", "--format", "raw", "--rate", "200", "--gil"]
        command += ["-o", str(profile), "--", sys.executable, "-m", "flows.cli", *args]
    else:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile)]
        command += ["-m", "flows.cli", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    peak = 0.0
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        while proc.poll() is None:
            peak = max(peak, _peak_rss_mib(proc.pid) or 0.0)
            time.sleep(0.2)
    code = proc.returncode
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if code != 0 or not report.exists():
        raise RuntimeError(f"run exited {code}; see {log}")
    return json.loads(report.read_text(encoding="utf-8")), wall, peak, cpu


def measure(
    n: int,
    *,
    latency: float,
    concurrency: int,
    in_flight: int,
    workers: int,
    work: Path,
    url: str,
    api: str,
    server_pid: int,
    replay_pid: int,
    profile: bool,
) -> dict[str, float | int]:
    """The fresh and the cached run for N items."""
    folder = work / f"n{n}"
    folder.mkdir(parents=True)
    config = folder / "config.yaml"
    write_config(
        config,
        n=n,
        url=url,
        concurrency=concurrency,
        in_flight=in_flight,
        workers=workers,
    )
    output = folder / "output"
    server_before = tree_cpu_seconds(server_pid)
    replay_before = tree_cpu_seconds(replay_pid)
    fresh, fresh_wall, peak, cpu = run_child(
        config,
        output,
        folder / "report-1.json",
        api,
        folder / "run-1.log",
        folder / "run-1.prof" if profile else None,
    )
    server_cpu = tree_cpu_seconds(server_pid) - server_before
    replay_cpu = tree_cpu_seconds(replay_pid) - replay_before
    cached, cached_wall, _, _ = run_child(
        config, output, folder / "report-2.json", api, folder / "run-2.log", None
    )
    s02, s02_cached = fresh["steps"][S02], cached["steps"][S02]
    ideal = n * latency / concurrency
    return {
        "items": n,
        "s02_seconds": s02["seconds"],
        "ideal_seconds": round(ideal, 3),
        "efficiency": round(ideal / s02["seconds"], 3) if s02["seconds"] else 0.0,
        "s02_calls": s02["llm_calls"],
        "s02_ok": s02["ok"],
        "s02_failed": s02["failed"],
        "s01_seconds": fresh["steps"][S01]["seconds"],
        "child_wall_seconds": round(fresh_wall, 3),
        "peak_rss_mib": round(peak, 1),
        "child_cpu_ms_per_item": round(1000 * cpu / n, 2),
        "server_cpu_ms_per_item": round(1000 * server_cpu / n, 2),
        "replay_cpu_ms_per_item": round(1000 * replay_cpu / n, 2),
        "cached_s02_seconds": s02_cached["seconds"],
        "cached_s02_calls": s02_cached["llm_calls"],
        "cached_child_wall_seconds": round(cached_wall, 3),
    }


def table(rows: list[dict], latency: float, concurrency: int) -> str:
    """The measurements as a markdown table, with the growth first -> last N."""
    lines = [
        f"L = {latency} s, C = {concurrency}",
        "",
        "| N | s02 wall s | ideal N·L/C s | efficiency | calls | peak RSS MiB"
        " | CPU ms/item | API CPU ms/item | replay CPU ms/item | child wall s"
        " | cached s02 s | cached calls |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['items']} | {r['s02_seconds']:.2f} | {r['ideal_seconds']:.2f} "
            f"| {r['efficiency']:.3f} | {r['s02_calls']} | {r['peak_rss_mib']:.0f} "
            f"| {r['child_cpu_ms_per_item']:.1f} | {r['server_cpu_ms_per_item']:.1f} "
            f"| {r['replay_cpu_ms_per_item']:.1f} "
            f"| {r['child_wall_seconds']:.1f} "
            f"| {r['cached_s02_seconds']:.2f} "
            f"| {r['cached_s02_calls']} |"
        )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        lines += [
            "",
            f"Growth {first['items']} -> {last['items']} "
            f"(x{last['items'] / first['items']:g} items): "
            f"memory x{last['peak_rss_mib'] / first['peak_rss_mib']:.2f}, "
            f"s02 wall x{last['s02_seconds'] / first['s02_seconds']:.2f}",
        ]
    return "\n".join(lines)


def growth(rows: list[dict]) -> dict[str, float]:
    """Ratios of memory and s02 wall time, last N over first N."""
    if len(rows) < 2:
        return {}
    first, last = rows[0], rows[-1]
    return {
        "items_ratio": last["items"] / first["items"],
        "memory_ratio": round(last["peak_rss_mib"] / first["peak_rss_mib"], 3),
        "wall_ratio": round(last["s02_seconds"] / first["s02_seconds"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="model calls at once (C)"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        help="items at once (run.max_concurrency); default 2*C, so an item's "
        "bookkeeping overlaps other items' model calls",
    )
    parser.add_argument("--executor", choices=("local", "work_pool"), default="local")
    parser.add_argument(
        "--workers", type=int, default=2, help="work-pool workers (work_pool only)"
    )
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--work-dir", type=Path, help="keep runs here (default: temp)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile each fresh child: every thread with py-spy when it is "
        "installed (here or on PATH), else the main thread with cProfile",
    )
    args = parser.parse_args(argv)
    in_flight = args.in_flight or 2 * args.concurrency
    items = list(args.items)
    if items != sorted(items):
        print(
            "note: growth is reported first -> last N; pass N ascending",
            file=sys.stderr,
        )
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    # A fresh Prefect home (and so a fresh server database) for every process this
    # benchmark starts, as a new user's would be: a database grown by earlier runs
    # slows the server, and the user's own ~/.prefect is left alone.
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    cassette = work / "cassette.yaml"
    write_cassette(cassette, max(items))
    rows: list[dict] = []
    workers = args.workers if args.executor == "work_pool" else 0
    with (
        replay_server(cassette, args.latency) as (url, replay_pid),
        prefect_server(work / "prefect-server.log") as (api, server_pid),
        contextlib.ExitStack() as stack,
    ):
        if workers:
            stack.enter_context(work_pool(api, work, workers))
        for n in items:
            row = measure(
                n,
                latency=args.latency,
                concurrency=args.concurrency,
                in_flight=in_flight,
                workers=workers,
                work=work,
                url=url,
                api=api,
                server_pid=server_pid,
                replay_pid=replay_pid,
                profile=args.profile,
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"executor: {args.executor}" + (f", {workers} workers" if workers else ""))
    print(table(rows, args.latency, args.concurrency))
    if args.json:
        result = {
            "latency_s": args.latency,
            "concurrency": args.concurrency,
            "in_flight": in_flight,
            "executor": args.executor,
            "workers": workers,
            "cpus": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
            "rows": rows,
            "growth": growth(rows),
            "work_dir": str(work),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`agentskiller serve-episodes`: episodes over HTTP for trainers in other
processes.

Input: an output directory. Output: a small JSON API (Starlette under uvicorn)
beside the environments' own MCP endpoints:

- `POST /episodes` `{"query_id", "trial"?}` starts an episode in a fresh session
  and answers `{"episode_id", "query_id", "environment", "mcp_url", "tools",
  "messages", "system_prompt"}` (201). `mcp_url` is the streamable-HTTP endpoint
  of the environment's process with the episode's session in it
  (`http://HOST:PORT/mcp?session=<episode_id>`): the trainer calls the tools
  there with any MCP client.
- `GET /episodes/{id}` repeats that description.
- `GET /episodes/{id}/state` gives the session's `state_hash` and `diff`.
- `POST /episodes/{id}/reward` `{"messages": [...]}` scores the conversation
  (OpenAI chat format) with the session's final state: the `EvaluationResult`
  plus `reward` (its `total_score`) and `breakdown` (evaluator -> score).
- `DELETE /episodes/{id}` ends the episode.
- `GET /` says what is running.

Processes are pooled (`EnvironmentPool` over HTTP): episodes of one environment
(same clock, seed and overlay) share one process, each in its own session, so two
episodes never see each other's writes. Errors are `{"error": message}`: 400 bad
body, 404 unknown query or episode, 410 an episode whose environment died, 503
an environment that cannot start, 500 a broken output directory. Side effects:
the environments' processes, all stopped on shutdown.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tasks.runtime.environment_pool import EnvironmentPool
from tasks.runtime.episode import Episode
from tasks.runtime.served_environment import EnvironmentLost, EnvironmentStartError
from tasks.runtime.served_task import QueryNotFound
from tasks.store.artifacts import StoreError
from tasks.store.paths import QUERIES_DIR

DEFAULT_PORT = 8100
_Handler = Callable[[Request], Any]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def episode_app(output_dir: Path, *, host: str = "127.0.0.1") -> Starlette:
    """The episode API over one output directory.

    Args:
        output_dir: The pipeline's output root.
        host: Where the environments' MCP servers listen.

    Returns:
        The ASGI app; its lifespan starts the pool and stops every process.
    """
    episodes: dict[str, Episode] = {}
    pools: list[EnvironmentPool] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pools.append(EnvironmentPool(output_dir, transport="http", host=host))
        try:
            yield
        finally:
            for episode in list(episodes.values()):
                episode.close()
            episodes.clear()
            pool = pools.pop()
            running = len(pool.running())
            await anyio.to_thread.run_sync(pool.close)
            print(f"stopped {running} environment process(es)", file=sys.stderr)

    def found(request: Request) -> Episode:
        episode_id = request.path_params["episode_id"]
        episode = episodes.get(episode_id)
        if episode is None:
            raise _HttpError(404, f"no episode {episode_id!r}")
        return episode

    async def index(_request: Request) -> JSONResponse:
        running = pools[0].running() if pools else []
        return JSONResponse(
            {
                "output_dir": str(output_dir),
                "episodes": len(episodes),
                "environments": [
                    {"environment": s.key.environment, "episodes": s.episodes}
                    for s in running
                ],
            }
        )

    async def start(request: Request) -> JSONResponse:
        body = await _json_object(request)
        query_id = body.get("query_id")
        trial = body.get("trial", 0)
        if not isinstance(query_id, str) or not isinstance(trial, int) or trial < 0:
            raise _HttpError(400, 'expected {"query_id": str, "trial": int >= 0}')
        begin = functools.partial(
            Episode.start, output_dir, query_id, pool=pools[0], trial=trial
        )
        episode = await anyio.to_thread.run_sync(begin)
        episodes[episode.episode_id] = episode
        return JSONResponse(_described(episode, request), status_code=201)

    async def describe(request: Request) -> JSONResponse:
        return JSONResponse(_described(found(request), request))

    async def state(request: Request) -> JSONResponse:
        episode = found(request)
        digest, diff = await anyio.to_thread.run_sync(episode.state)
        return JSONResponse(
            {
                "episode_id": episode.episode_id,
                "state_hash": digest,
                "diff": diff.model_dump(mode="json"),
            }
        )

    async def reward(request: Request) -> JSONResponse:
        episode = found(request)
        messages = (await _json_object(request)).get("messages")
        if not isinstance(messages, list):
            raise _HttpError(400, 'expected {"messages": [OpenAI chat messages]}')
        try:
            episode.use_transcript(messages)
        except (ValueError, TypeError) as exc:
            raise _HttpError(400, f"invalid messages: {exc}") from exc
        result = await anyio.to_thread.run_sync(episode.finish)
        return JSONResponse(
            {
                "reward": result.total_score,
                "breakdown": {k: v.score for k, v in result.evaluators.items()},
                **result.model_dump(mode="json"),
            }
        )

    async def end(request: Request) -> JSONResponse:
        episode = found(request)
        episodes.pop(episode.episode_id, None)
        await anyio.to_thread.run_sync(episode.close)
        return JSONResponse({"episode_id": episode.episode_id, "closed": True})

    routes = [
        Route("/", _guarded(index), methods=["GET"]),
        Route("/episodes", _guarded(start), methods=["POST"]),
        Route("/episodes/{episode_id}", _guarded(describe), methods=["GET"]),
        Route("/episodes/{episode_id}", _guarded(end), methods=["DELETE"]),
        Route("/episodes/{episode_id}/state", _guarded(state), methods=["GET"]),
        Route("/episodes/{episode_id}/reward", _guarded(reward), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _described(episode: Episode, request: Request) -> dict[str, Any]:
    # The trainer reaches the environment at the host it reached us by.
    host = request.url.hostname or "127.0.0.1"
    port = episode.served.port
    return {
        "episode_id": episode.episode_id,
        "query_id": episode.query.id,
        "environment": episode.environment,
        "mcp_url": f"http://{host}:{port}/mcp?session={episode.episode_id}",
        "tools": episode.tools,
        "messages": [m.openai() for m in episode.messages],
        "system_prompt": episode.system_prompt,
    }


def _guarded(handler: _Handler) -> _Handler:
    """The handler with every error it can meet answered as JSON."""

    @functools.wraps(handler)
    async def run(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except _HttpError as exc:
            return _error(exc.status, str(exc))
        except QueryNotFound as exc:
            return _error(404, str(exc.args[0]))
        except EnvironmentLost as exc:
            return _error(410, str(exc))
        except EnvironmentStartError as exc:
            return _error(503, str(exc))
        except (StoreError, FileNotFoundError) as exc:
            return _error(500, str(exc))

    return run


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise _HttpError(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _HttpError(400, "the body must be a JSON object")
    return body


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; serves until interrupted, returns the exit
    status (2 when the output directory has no queries)."""
    import uvicorn

    args = _parser().parse_args(argv)
    output_dir = Path(args.output_dir)
    if not any((output_dir / QUERIES_DIR).glob("*.jsonl")):
        print(f"error: no queries in {output_dir / QUERIES_DIR}", file=sys.stderr)
        return 2
    print(
        f"serving episodes of {output_dir} at http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    app = episode_app(output_dir, host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentskiller serve-episodes",
        description="Serve episodes of an output directory's queries over HTTP.",
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    return parser


if __name__ == "__main__":
    sys.exit(main())

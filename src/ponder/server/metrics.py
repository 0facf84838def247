"""GET /metrics: Prometheus text format (0.0.4), written by hand (no extra dependency).

Series::

    ponder_requests_total{endpoint,status}            counter
    ponder_request_seconds{endpoint}                  histogram (whole response, streams too)
    ponder_time_to_first_token_seconds{endpoint}      histogram (streams)
    ponder_tokens_total{phase,kind}                   counter (kind: prompt, cached, completion)
    ponder_requests_in_flight                         gauge (admitted generating requests)

With the online mode on (``ServerSettings.token_budget``), the rolling budget's
series too (``OnlineBudget.metric_lines``)::

    ponder_token_budget_tokens                        gauge (tokens per window)
    ponder_token_budget_window_seconds                gauge
    ponder_token_budget_spent_tokens                  gauge (billed in the current window)
    ponder_token_budget_available_tokens              gauge
    ponder_token_budget_billed_requests_total         counter
    ponder_token_budget_level_requests_total{level,name,strategy}  counter

One ``Metrics`` object per app (on ``app.state``); it is only touched from the
event loop, so it needs no lock.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder.ledger import PHASES, Ledger
from ponder.server.deps import require_api_key

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)

router = APIRouter(dependencies=[Depends(require_api_key)])


class Histogram:
    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{{labels}{"," if labels else ""}le="{le}"}} {running}')
        out.append(f"{name}_sum{{{labels}}} {self.sum:.6f}")
        out.append(f"{name}_count{{{labels}}} {running}")
        return out


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = defaultdict(Histogram)
        self.first_token: dict[str, Histogram] = defaultdict(Histogram)
        self.tokens: dict[tuple[str, str], int] = defaultdict(int)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, status)] += 1
        self.latency[endpoint].observe(seconds)

    def observe_first_token(self, endpoint: str, seconds: float) -> None:
        self.first_token[endpoint].observe(seconds)

    def add_tokens(self, ledger: Ledger) -> None:
        for phase in PHASES:
            usage = ledger.total(phase)
            self.tokens[(phase, "prompt")] += usage.prompt_tokens
            self.tokens[(phase, "cached")] += usage.cached_prompt_tokens
            self.tokens[(phase, "completion")] += usage.completion_tokens

    def render(self, in_flight: int = 0, extra: Sequence[str] = ()) -> str:
        lines = ["# HELP ponder_requests_total HTTP requests by endpoint and status.",
                 "# TYPE ponder_requests_total counter"]
        lines += [f'ponder_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                  for (e, s), n in sorted(self.requests.items())]
        lines += ["# HELP ponder_request_seconds Time to the end of the response.",
                  "# TYPE ponder_request_seconds histogram"]
        for endpoint, hist in sorted(self.latency.items()):
            lines += hist.lines("ponder_request_seconds", f'endpoint="{endpoint}"')
        lines += ["# HELP ponder_time_to_first_token_seconds Time to the first streamed token.",
                  "# TYPE ponder_time_to_first_token_seconds histogram"]
        for endpoint, hist in sorted(self.first_token.items()):
            lines += hist.lines("ponder_time_to_first_token_seconds", f'endpoint="{endpoint}"')
        lines += ["# HELP ponder_tokens_total Tokens by phase (test, sleep) and kind.",
                  "# TYPE ponder_tokens_total counter"]
        lines += [f'ponder_tokens_total{{phase="{p}",kind="{k}"}} {n}'
                  for (p, k), n in sorted(self.tokens.items())]
        lines += ["# HELP ponder_requests_in_flight Generating requests admitted now.",
                  "# TYPE ponder_requests_in_flight gauge",
                  f"ponder_requests_in_flight {in_flight}", *extra]
        return "\n".join(lines) + "\n"


class ObserveRequests:
    """ASGI middleware: count each HTTP request and time it to its last body byte.

    The endpoint label is the matched route's path template (``/v1/contexts/{context_id}``),
    or "unmatched", so labels cannot grow with client input.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    state = request.app.state
    extra = state.token_budget.metric_lines() if state.token_budget is not None else []
    body = state.metrics.render(in_flight=state.gate.active, extra=extra)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

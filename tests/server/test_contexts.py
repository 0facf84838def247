"""The contexts API and context_id on chat completions, against the real server."""

from __future__ import annotations

import time
from typing import Any

import httpx
from serving import Served

STORY = "Mia has 12 apples. She buys 3 bags with 4 apples in each bag."


def call(served: Served, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{served.base_url}{path}", json=body, headers=served.auth,
                         timeout=120)


def test_create_sleep_ask_delete(served: Served) -> None:
    created = call(served, "POST", "/contexts",
                   {"text": STORY, "name": "apples", "triggers": "none"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["chars"] == len(STORY)
    assert cid in [c["id"] for c in call(served, "GET", "/contexts").json()["data"]]

    slept = call(served, "POST", f"/contexts/{cid}/sleep", {"params": {"rounds": 1,
                                                                       "max_tokens": 32}})
    assert slept.status_code == 200, slept.text
    report = slept.json()
    assert report["outcome"]["status"] == "fresh"
    assert report["learned"]["version"] == 1 and report["learned"]["text"]
    assert report["usage"]["phases"]["sleep"]["completion_tokens"] > 0
    assert report["usage"]["phases"]["test"]["completion_tokens"] == 0

    reply = served.client().chat.completions.create(
        model=served.model, max_tokens=16,
        messages=[{"role": "user", "content": "How many apples does Mia have now?"}],
        extra_body={"ponder": {"context_id": cid}})  # type: ignore[arg-type]
    info = reply.choices[0].model_extra["ponder"]  # type: ignore[index]
    assert info["context"]["context_id"] == cid
    assert info["context"]["learned_version"] == 1
    assert reply.usage is not None
    ponder = reply.usage.model_extra["ponder"]  # type: ignore[index]
    assert ponder["context"]["amortisation"]["queries"] == 1
    assert ponder["context"]["amortisation"]["sleep_tokens"] == \
        report["learned"]["sleep_usage"]["completion_tokens"]
    # the answer's prompt held the context (and the notes): much longer than the question
    assert reply.usage.prompt_tokens > 60

    detail = call(served, "GET", f"/contexts/{cid}").json()
    assert detail["text"] == STORY
    assert [v["version"] for v in detail["learned"]] == [1]
    assert detail["amortisation"]["queries"] == 1
    assert detail["amortisation"]["cost_per_query"] is not None

    assert call(served, "DELETE", f"/contexts/{cid}").json()["deleted"] is True
    assert call(served, "GET", f"/contexts/{cid}").status_code == 404


def test_context_errors(served: Served) -> None:
    cid = call(served, "POST", "/contexts", {"text": STORY, "triggers": "none"}).json()["id"]
    two_turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                 {"role": "user", "content": "How many apples?"}]
    for body, status, param in [
        ({"messages": two_turns, "ponder": {"context_id": cid}}, 400, "messages"),
        ({"messages": two_turns[-1:], "ponder": {"context_id": 999_999}}, 404,
         "ponder.context_id"),
        ({"messages": two_turns[-1:], "ponder": {"context_id": "abc"}}, 404,
         "ponder.context_id"),
    ]:
        response = call(served, "POST", "/chat/completions", body | {"max_tokens": 2})
        assert response.status_code == status, response.text
        assert response.json()["error"]["param"] == param
    assert call(served, "POST", "/contexts", {"text": ""}).status_code == 400
    assert call(served, "POST", "/contexts", {"text": "x", "triggers": "every=0"}
                ).status_code == 400
    assert call(served, "GET", "/contexts/abc").status_code == 400
    assert call(served, "POST", f"/contexts/{cid}/sleep", {"params": {"rounds": 0}}
                ).status_code == 400
    assert call(served, "POST", f"/contexts/{cid}/sleep", {"params": {"nope": 1}}
                ).status_code == 400
    assert call(served, "DELETE", "/contexts/999999").status_code == 404


def test_background_worker_sleeps_on_ingest(served: Served) -> None:
    assert httpx.get(f"{served.root}/health").json()["sleep_worker"] is True
    cid = call(served, "POST", "/contexts", {"text": STORY, "triggers": "ingest"}).json()["id"]
    deadline = time.monotonic() + 60
    while not (detail := call(served, "GET", f"/contexts/{cid}").json())["learned"]:
        assert time.monotonic() < deadline, detail["jobs"]
        time.sleep(0.2)
    assert detail["learned"][0]["status"] == "fresh"
    assert detail["jobs"][0]["status"] == "done"


def test_sleep_without_waiting_queues_a_job(served: Served) -> None:
    cid = call(served, "POST", "/contexts", {"text": STORY, "triggers": "none"}).json()["id"]
    queued = call(served, "POST", f"/contexts/{cid}/sleep", {"wait": False})
    assert queued.status_code == 202
    assert queued.json()["job"]["status"] == "pending"
    deadline = time.monotonic() + 60  # the in-process worker picks it up
    while not call(served, "GET", f"/contexts/{cid}").json()["learned"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)

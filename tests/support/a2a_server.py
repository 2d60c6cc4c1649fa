"""A real A2A server for the tests, built from the `a2a-sdk` server classes, run as its own process:

    python -m tests.support.a2a_server --mode ok [--port 0] [--token-env NAME] [--record FILE]

It prints `A2A_READY <base url>` once it listens. Modes: `ok` (streams two working status
updates, then a text + data artifact citing a source, then completes), `error500` (the card is
fine, every JSON-RPC call answers HTTP 500), `slow` (one status update, then nothing for a
minute), `malformed` (an artifact whose parts are all unreadable: empty, a bare number, a
javascript: URL, blank text), `oversized` (an artifact of 300,000 characters), `failed` (the task
fails with a reason), `message` (a direct Message reply, no task).

Protocol pages: https://a2a-protocol.org/v1.0.0/specification/ (agent card at
/.well-known/agent-card.json, SendStreamingMessage, TaskStatusUpdateEvent /
TaskArtifactUpdateEvent) and the SDK's own server classes (a2a.server.*).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket

import uvicorn
from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    TaskState,
)
from google.protobuf import json_format, struct_pb2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse, PlainTextResponse

WAREHOUSE_EXAMPLES = [
    "is the warehouse open today",
    "warehouse opening hours",
    "is there a warehouse strike",
    "can customers pick up at the warehouse",
    "warehouse closed for holidays?",
    "when does the warehouse close",
    "warehouse address for pickup",
    "is the Venlo warehouse operating normally",
    "warehouse backlog this week",
    "warehouse capacity issues",
]
VENLO = "The Venlo warehouse is open Monday to Friday, 07:00-22:00 CET; pickups need the order number."


def data(value) -> Part:
    return Part(data=json_format.ParseDict(value, struct_pb2.Value()), media_type="application/json")


class ScriptedExecutor(AgentExecutor):
    def __init__(self, mode: str, record: str | None) -> None:
        self.mode, self.record = mode, record

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        if self.record:
            with open(self.record, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(json_format.MessageToDict(message)) + "\n")
        if self.mode == "message":
            await event_queue.enqueue_event(
                _agent_message(message, [Part(text=VENLO), data({"url": "https://ops.example.com/venlo"})])
            )
            return
        task = context.current_task or new_task_from_user_message(message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(updater.new_agent_message([Part(text="Checking the warehouse schedule")]))
        if self.mode == "slow":
            await asyncio.sleep(60)
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            updater.new_agent_message([Part(text="Reading the Venlo site calendar")]),
        )
        if self.mode == "failed":
            await updater.failed(updater.new_agent_message([Part(text="the site calendar is offline")]))
            return
        if self.mode == "malformed":
            parts = [Part(), data(42), Part(url="javascript:alert(1)"), Part(text="   ")]
            await updater.add_artifact(parts, artifact_id="bad", name="Broken")
        elif self.mode == "oversized":
            await updater.add_artifact([Part(text="x" * 300_000)], artifact_id="big", name="Huge")
        else:
            query = next((p.text for p in message.parts if p.text), "")
            await updater.add_artifact(
                [
                    Part(text=f"Schedule for: {query[:80]}"),
                    data(
                        {
                            "sources": [
                                {
                                    "id": "site:venlo",
                                    "title": "Venlo warehouse",
                                    "text": VENLO,
                                    "url": "https://ops.example.com/venlo",
                                    "score": 0.9,
                                }
                            ]
                        }
                    ),
                ],
                artifact_id="schedule",
                name="Warehouse schedule",
            )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


def _agent_message(user, parts):
    from a2a.types.a2a_pb2 import Message, Role

    return Message(
        message_id="reply-1", role=Role.ROLE_AGENT, context_id=user.context_id, task_id="", parts=parts
    )


class Always500(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        if request.method == "POST":
            return PlainTextResponse("boom", status_code=500)
        return await call_next(request)


class RequireBearer(BaseHTTPMiddleware):
    def __init__(self, app, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request, call_next):
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await call_next(request)


def build_app(mode: str, base_url: str, *, token: str | None = None, record: str | None = None) -> Starlette:
    card = AgentCard(
        name="Warehouse status",
        description="Opening hours, pickups and disruptions of the store's warehouses.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=base_url + "/", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=[
            AgentSkill(
                id="warehouse_status",
                name="Warehouse status",
                description="Whether a warehouse is open, its hours, pickups and disruptions.",
                tags=["warehouse"],
                examples=WAREHOUSE_EXAMPLES,
            )
        ],
    )
    handler = DefaultRequestHandler(
        agent_executor=ScriptedExecutor(mode, record), task_store=InMemoryTaskStore(), agent_card=card
    )
    middleware = []
    if mode == "error500":
        middleware.append(Middleware(Always500))
    if token:
        middleware.append(Middleware(RequireBearer, token=token))
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    return Starlette(routes=routes, middleware=middleware)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-env", default=None)
    parser.add_argument("--record", default=None)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    token = os.environ[args.token_env] if args.token_env else None
    app = build_app(args.mode, base_url, token=token, record=args.record)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    print(f"A2A_READY {base_url}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()

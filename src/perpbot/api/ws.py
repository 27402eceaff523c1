"""The WebSocket ``/api/v1/ws``: the bot's live events, pushed as JSON.

On connect (the token is checked by :class:`perpbot.api.auth.TokenGate`: query ``?token=``,
the ``perpbot_token`` cookie or a bearer header; a bad token is closed with 1008) the client
gets ``{"type": "hello", "status": {...}, "recent": [up to 50 recent non-cycle events]}`` (status as
``GET /api/v1/status``), then every bot event
as ``{"type": "event", "kind", "data", "time", "seq"}`` (kinds and fields:
:class:`perpbot.bot.events.BotEvent`), and ``{"type": "status", "status": {...}}`` whenever the
bot's ``running`` / ``paused`` / ``mode`` / ``run_id`` change (e.g. a replay ended: the bot
publishes no event for that) when the client asks for them with ``?status=1`` (the dashboard
does; other clients see events only). Incoming messages are ignored.

A slow client never slows the bot: the trading loop only offers events to this connection's
bounded :class:`perpbot.bot.events.Subscription` (oldest dropped when full, without waiting);
this sender polls it without blocking and holds no lock the loop needs while it awaits the
socket.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from perpbot.api.models import clean
from perpbot.logs import get_logger

log = get_logger("perpbot.api")

#: Events buffered per connection before the oldest are dropped.
QUEUE_SIZE = 1000
#: Seconds between polls of an empty subscription.
POLL_S = 0.05
#: Status fields whose change is pushed as a "status" message.
STATUS_KEYS = ("running", "paused", "mode", "run_id")
#: Events sent per batch before yielding to other connections.
BATCH = 200


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(clean(payload), allow_nan=False, separators=(",", ":"))


def event_payload(event) -> dict[str, Any]:
    return {"type": "event", "kind": event.kind, "data": event.data, "time": event.time.isoformat(),
            "seq": event.seq}


async def _until_disconnect(websocket: WebSocket) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return


def _status_key(ctx) -> tuple:
    st = ctx.control.status()  # a copy under the control's lock: no ledger read
    return tuple(st.get(k) for k in STATUS_KEYS)


def make_ws_endpoint(ctx, status: Callable[[], dict[str, Any]]):
    """The endpoint coroutine over ``ctx`` (``status``: the payload of GET /api/v1/status)."""

    async def events_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        bus = ctx.control.events
        sub = bus.subscribe(maxsize=QUEUE_SIZE)
        closed = asyncio.create_task(_until_disconnect(websocket))
        try:
            hello = await run_in_threadpool(status)  # reads the ledger: off the event loop
            recent = [event_payload(e) for e in bus.recent(50) if e.kind != "cycle"]
            await websocket.send_text(dumps({"type": "hello", "status": hello, "recent": recent}))
            follow = websocket.query_params.get("status") == "1"
            seen = _status_key(ctx)
            while not closed.done():
                sent = 0
                while sent < BATCH and (event := sub.get(timeout=0)) is not None:
                    await websocket.send_text(dumps(event_payload(event)))
                    sent += 1
                if follow and (now := _status_key(ctx)) != seen:
                    seen = now
                    await websocket.send_text(dumps({"type": "status", "status": await run_in_threadpool(status)}))
                if sent == 0:
                    await asyncio.wait({closed}, timeout=POLL_S)
                else:
                    await asyncio.sleep(0)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away
        except Exception as exc:  # e.g. the ledger is unreadable: tell the client, keep the server up
            log.error("ws_error", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            try:
                await websocket.close(code=1011, reason="internal error; see the server log")
            except (RuntimeError, OSError):
                pass
        finally:
            bus.unsubscribe(sub)
            closed.cancel()

    return events_ws

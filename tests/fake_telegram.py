"""A fake Telegram Bot API server on 127.0.0.1 for tests (the real python-telegram-bot talks to it).

It speaks enough of https://core.telegram.org/bots/api for perpbot: getMe, getUpdates (long
poll with ``timeout`` and ``offset``), sendMessage, editMessageText, answerCallbackQuery,
deleteWebhook, setMyCommands/getMyCommands, close, logOut. Every request is recorded
(method, parameters, arrival time). Tests enqueue updates (commands, button presses) and wait
for the bot's replies; they can also make a method fail with HTTP errors (``fail``) or hang
until the server stops (``hang``). Use it as a context manager: it stops its thread and
releases any hanging request on exit.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "perpbot", "username": "perpbot_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
_RAW_STRING_FIELDS = {"text", "callback_query_id", "parse_mode", "inline_message_id", "url"}


@dataclass
class Request:
    """One recorded API call: Bot API method, decoded parameters, token, time (monotonic s)."""

    method: str
    params: dict[str, Any]
    token: str
    time: float = field(default_factory=time.monotonic)


class FakeTelegram:
    """Threaded fake Bot API. ``base_url`` is what ``Settings.telegram_base_url`` should be."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.messages: dict[tuple[int, int], dict] = {}   # (chat_id, message_id) -> message
        self.commands: list[dict] = []
        self.sent: list[dict] = []     # messages the bot sent (after the server answered), in order
        self.edits: list[dict] = []    # editMessageText results, in order
        self._updates: list[dict] = []
        self._next_update = 1
        self._next_message = 1
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._failures: dict[str, list[int]] = {}
        self._hang: set[str] = set()
        self.hanging = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-telegram", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> "FakeTelegram":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> "FakeTelegram":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls
    def fail(self, method: str, *statuses: int) -> None:
        """The next calls of ``method`` answer with these HTTP statuses (then normally)."""
        with self._cond:
            self._failures.setdefault(method, []).extend(statuses)

    def hang(self, method: str, on: bool = True) -> None:
        """Calls of ``method`` never answer (until ``hang(method, False)`` or stop)."""
        with self._cond:
            (self._hang.add if on else self._hang.discard)(method)
            self._cond.notify_all()

    def _update(self, payload: dict) -> int:
        with self._cond:
            uid = self._next_update
            self._next_update += 1
            self._updates.append({"update_id": uid, **payload})
            self._cond.notify_all()
        return uid

    @staticmethod
    def _user(chat_id: int) -> dict:
        return {"id": chat_id, "is_bot": False, "first_name": "Trader", "language_code": "en"}

    def send_text(self, chat_id: int, text: str) -> int:
        """Enqueue a user's message (a leading /command gets its bot_command entity)."""
        msg = {"message_id": 100_000 + self._next_update, "date": int(time.time()),
               "chat": {"id": chat_id, "type": "private", "first_name": "Trader"},
               "from": self._user(chat_id), "text": text}
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._update({"message": msg})

    def press(self, chat_id: int, message_id: int, data: str) -> int:
        """Enqueue a press of the inline button with ``callback_data`` on a message the bot sent."""
        with self._cond:
            message = dict(self.messages[(chat_id, message_id)])
        cq = {"id": f"cq{self._next_update}", "from": self._user(chat_id), "chat_instance": str(chat_id),
              "message": message, "data": data}
        return self._update({"callback_query": cq})

    def calls(self, method: str | None = None, chat_id: int | None = None) -> list[Request]:
        with self._cond:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (chat_id is None or r.params.get("chat_id") == chat_id)]

    def wait_for(self, predicate: Callable[["FakeTelegram"], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` holds (re-checked on every request)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def wait_calls(self, method: str, n: int, chat_id: int | None = None, timeout: float = 10.0) -> list[Request]:
        """Wait for at least ``n`` calls of ``method`` (to ``chat_id``); AssertionError on timeout."""
        if not self.wait_for(lambda s: len(s.calls(method, chat_id)) >= n, timeout):
            got = [r.params.get("text") for r in self.calls(method, chat_id)]
            raise AssertionError(f"expected {n} {method} calls, got {len(got)}: {got}")
        return self.calls(method, chat_id)

    def sent_to(self, chat_id: int) -> list[dict]:
        with self._cond:
            return [m for m in self.sent if m["chat"]["id"] == chat_id]

    def wait_sent(self, chat_id: int, n: int, timeout: float = 10.0) -> list[dict]:
        """Wait until the bot has sent at least ``n`` messages to ``chat_id``; returns them all."""
        if not self.wait_for(lambda s: len(s.sent_to(chat_id)) >= n, timeout):
            raise AssertionError(f"expected {n} messages to {chat_id}, got "
                                 f"{[m['text'][:80] for m in self.sent_to(chat_id)]}")
        return self.sent_to(chat_id)

    def wait_edits(self, n: int, timeout: float = 10.0) -> list[dict]:
        if not self.wait_for(lambda s: len(s.edits) >= n, timeout):
            raise AssertionError(f"expected {n} edits, got {[m['text'][:80] for m in self.edits]}")
        with self._cond:
            return list(self.edits)

    def updates_pending(self) -> int:
        with self._cond:
            return len(self._updates)

    # ------------------------------------------------------------------ API
    def _message(self, chat_id: int, text: str, reply_markup: Any = None) -> dict:
        msg = {"message_id": self._next_message, "date": int(time.time()), "from": BOT_USER,
               "chat": {"id": chat_id, "type": "private", "first_name": "Trader"}, "text": text}
        self._next_message += 1
        if reply_markup:
            msg["reply_markup"] = reply_markup
        self.messages[(chat_id, msg["message_id"])] = msg
        self.sent.append(msg)
        self._cond.notify_all()
        return msg

    def _get_updates(self, p: dict) -> list[dict]:
        offset = int(p.get("offset") or 0)
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        with self._cond:
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closing.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            return list(self._updates[: int(p.get("limit") or 100)])

    def _api(self, method: str, p: dict) -> tuple[int, Any]:
        if method == "getMe":
            return 200, BOT_USER
        if method == "getUpdates":
            return 200, self._get_updates(p)
        with self._cond:
            if method == "sendMessage":
                return 200, self._message(int(p["chat_id"]), p["text"], p.get("reply_markup"))
            if method == "editMessageText":
                key = (int(p["chat_id"]), int(p["message_id"]))
                if key not in self.messages:
                    return 400, "Bad Request: message to edit not found"
                msg = self.messages[key] = {**self.messages[key], "text": p["text"], "edit_date": int(time.time())}
                msg.pop("reply_markup", None)
                if p.get("reply_markup"):
                    msg["reply_markup"] = p["reply_markup"]
                self.edits.append(msg)
                self._cond.notify_all()
                return 200, msg
            if method == "setMyCommands":
                self.commands = list(p.get("commands") or [])
                return 200, True
            if method == "getMyCommands":
                return 200, self.commands
            if method in ("answerCallbackQuery", "deleteWebhook", "close", "logOut", "deleteMyCommands"):
                return 200, True
        return 404, "Not Found: method not found"

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _params(self) -> dict:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                if "json" in (self.headers.get("Content-Type") or ""):
                    return json.loads(body or "{}")
                out = {}
                for k, v in parse_qs(body, keep_blank_values=True).items():
                    try:
                        out[k] = v[0] if k in _RAW_STRING_FIELDS else json.loads(v[0])
                    except ValueError:
                        out[k] = v[0]
                return out

            def _reply(self, status: int, result: Any) -> None:
                if status == 200:
                    payload = {"ok": True, "result": result}
                else:
                    payload = {"ok": False, "error_code": status,
                               "description": result if isinstance(result, str) else "Internal Server Error"}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. a cancelled long poll)
                    self.close_connection = True

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or not parts[0].startswith("bot"):
                    return self._reply(404, "Not Found")
                token, method = parts[0][3:], parts[1]
                params = self._params()
                with fake._cond:
                    fake.requests.append(Request(method, params, token))
                    fake._cond.notify_all()
                    failures = fake._failures.get(method)
                    status = failures.pop(0) if failures else None
                    hang = method in fake._hang
                if hang:
                    with fake._cond:
                        fake.hanging += 1
                        while method in fake._hang and not fake._closing.is_set():
                            fake._cond.wait(0.1)
                        fake.hanging -= 1
                    if fake._closing.is_set():
                        self.close_connection = True
                        return None
                if status is not None:
                    return self._reply(status, HTTPStatus(status).phrase)
                code, result = fake._api(method, params)
                return self._reply(code, result)

            do_GET = do_POST

        return Handler

"""Websockets of the Bitget simulator (Bitget v2 ``/v2/ws/public`` and ``/v2/ws/private``).

Protocol as ccxt.pro's bitget speaks it: text ``ping`` -> ``pong``; ``{"op":"subscribe",
"args":[{instType, channel, instId|coin}]}`` -> ``{"event":"subscribe","arg":...}`` then pushes
``{"action": "snapshot"|"update", "arg": ..., "data": [...], "ts": ms}``; private login
``{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}`` -> ``{"event":"login","code":0}``
(sign = base64(HMAC(secret, timestamp + "GET" + "/user/verify"))), errors
``{"event":"error","code":..,"msg":..}``.

Public channels: ``candle<gran>`` (snapshot of the last 100 closed candles on subscribe, then
one update per newly closed candle), ``ticker`` (every advance), ``books1/5/15/50``
(snapshots), ``books`` (snapshot, then updates with removed levels at size "0" and Bitget's
crc32 ``checksum`` of the top 25 levels, which ccxt.pro verifies). Private channels (login
first): ``orders``, ``orders-algo`` (TP/SL plans), ``fill``, ``positions`` (snapshot of all
positions on subscribe and on every change / advance), ``account`` (on subscribe and changes).
Public channels exist for every traded symbol (``instId`` = ``symbol`` or a ``tradable`` one);
private channels carry every traded symbol (``positions`` snapshots list all open positions).
Messages are built under the simulator's lock and sent from its event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib

from aiohttp import WSMsgType, web

from perpbot.devtools.bitget_sim.auth import AuthError, verify_ws_login
from perpbot.devtools.bitget_sim.market import GRANULARITY_MS, num
from perpbot.devtools.bitget_sim.models import fee_detail_json

PUBLIC_CHANNELS = ("ticker", "books", "books1", "books5", "books15", "books50")
PRIVATE_CHANNELS = ("orders", "orders-algo", "fill", "positions", "account")
SNAPSHOT_CANDLES = 100


def _key(arg: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in arg.items()))


def book_checksum(bids: list, asks: list) -> int:
    """Bitget's order-book checksum: signed crc32 of bid/ask price:size strings interleaved,
    top 25 levels (as ccxt.pro's bitget computes it)."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    v = zlib.crc32(":".join(parts).encode())
    return v - (1 << 32) if v >= 0x80000000 else v


class _Conn:
    def __init__(self, ws: web.WebSocketResponse, private: bool) -> None:
        self.ws = ws
        self.private = private
        self.authed = False
        self.subs: dict[tuple, dict] = {}
        self.books: dict[tuple, tuple[list, list]] = {}  # last full book sent on a "books" sub


class WsHub:
    """Connections, subscriptions and pushes of one simulator."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.conns: set[_Conn] = set()
        self.last_candle_push = sim.market.now_ms

    # ---- connection handling ---------------------------------------------------------------------
    async def handle(self, request: web.Request, private: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, private)
        with self.sim.lock:  # advance() reads connections and subscriptions from another thread
            self.conns.add(conn)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data == "ping":
                    await ws.send_str("pong")
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await self._error(conn, "30016", "Param error")
                    continue
                await self._on_request(conn, req)
        finally:
            with self.sim.lock:
                self.conns.discard(conn)
        return ws

    async def _error(self, conn: _Conn, code: str, msg: str) -> None:
        await conn.ws.send_str(json.dumps({"event": "error", "code": int(code), "msg": msg}))

    async def _on_request(self, conn: _Conn, req: dict) -> None:
        op = req.get("op")
        args = req.get("args") or []
        if op == "login":
            if not conn.private:
                await self._error(conn, "30003", "invalid op")
                return
            try:
                verify_ws_login(args[0] if args else {}, self.sim.creds)
            except AuthError as exc:
                await self._error(conn, exc.code, exc.msg)
                return
            conn.authed = True
            await conn.ws.send_str(json.dumps({"event": "login", "code": 0, "msg": ""}))
            return
        if op not in ("subscribe", "unsubscribe"):
            await self._error(conn, "30003", "invalid op")
            return
        for arg in args:
            channel = arg.get("channel", "")
            if op == "unsubscribe":
                with self.sim.lock:
                    conn.subs.pop(_key(arg), None)
                    conn.books.pop(_key(arg), None)
                await conn.ws.send_str(json.dumps({"event": "unsubscribe", "arg": arg}))
                continue
            if conn.private and not conn.authed:
                await self._error(conn, "30004", "User not logged in")
                continue
            valid = (channel in PRIVATE_CHANNELS) if conn.private else (
                channel in PUBLIC_CHANNELS or (channel.startswith("candle") and channel[6:] in GRANULARITY_MS))
            if not valid or (not conn.private and arg.get("instId") not in self.sim.engines):
                await self._error(conn, "30001", f"instType:{arg.get('instType')},channel:{channel},"
                                                 f"instId:{arg.get('instId')} doesn't exist")
                continue
            await conn.ws.send_str(json.dumps({"event": "subscribe", "arg": arg}))
            with self.sim.lock:
                conn.subs[_key(arg)] = arg
                first = self._initial(channel, str(arg.get("instId")))
            if first is not None:
                await self._push(conn, arg, first, "snapshot")

    def _initial(self, channel: str, inst: str):
        if channel.startswith("candle"):
            return self.sim.engines[inst].market.candles(channel[6:], limit=SNAPSHOT_CANDLES)
        if channel == "ticker":
            return [self._ticker(inst)]
        if channel.startswith("books"):
            return self._book(inst)
        if channel == "positions":
            return self._positions()
        if channel == "account":
            return [self._account()]
        if channel == "orders":
            live = [self._order(o) for e in self.sim.engines.values() for o in e.orders.values() if o.open]
            return live or None
        return None

    async def _push(self, conn: _Conn, arg: dict, data, action: str) -> None:
        channel = arg.get("channel", "")
        if channel.startswith("books"):
            bids, asks = data
            depth = {"books1": 1, "books5": 5, "books15": 15}.get(channel, 50)
            bids, asks = bids[:depth], asks[:depth]
            payload = {"asks": asks, "bids": bids, "checksum": 0, "ts": str(self.sim.market.now_ms)}
            if channel == "books":
                key = _key(arg)
                prev = conn.books.get(key)
                conn.books[key] = (bids, asks)
                if prev is not None and action != "snapshot":
                    payload["bids"] = _delta(prev[0], bids, reverse=True)
                    payload["asks"] = _delta(prev[1], asks, reverse=False)
                    payload["checksum"] = book_checksum(bids, asks)
                else:
                    action = "snapshot"
            else:
                action = "snapshot"
            data = [payload]
        msg = {"action": action, "arg": arg, "data": data, "ts": int(time.time() * 1000)}
        try:
            await conn.ws.send_str(json.dumps(msg))
        except (ConnectionError, RuntimeError):
            self.conns.discard(conn)

    # ---- payloads (built under the simulator's lock) -------------------------------------------------
    def _ticker(self, inst: str) -> dict:
        m = self.sim.engines[inst].market
        t = dict(m.ticker())
        t["instId"] = t.pop("symbol")
        t["nextFundingTime"] = str(m.next_funding_ms())
        return t

    def _book(self, inst: str) -> tuple[list, list]:
        d = self.sim.engines[inst].market.depth(50)
        return d["bids"], d["asks"]

    def _positions(self) -> list:
        """Every traded symbol's open position (Bitget pushes all positions in a snapshot)."""
        out = []
        for e in self.sim.engines.values():
            pos = e.position
            if pos is None:
                continue
            p = pos.to_bitget(e.market.last)
            p["instId"] = p.pop("symbol")
            p["posId"] = str(pos.c_time)
            p["marginRate"] = p["marginRatio"]
            p["unrealizedPLR"] = num(float(p["unrealizedPL"]) / pos.margin) if pos.margin > 0 else "0"
            p["frozen"] = "0"
            out.append(p)
        return out

    def _account(self) -> dict:
        a = self.sim.engine.account_row()
        return {"marginCoin": "USDT", "frozen": a["locked"], "available": a["available"],
                "maxOpenPosAvailable": a["isolatedMaxAvailable"], "maxTransferOut": a["maxTransferOut"],
                "equity": a["accountEquity"], "usdtEquity": a["usdtEquity"], "crossedRiskRate": "0",
                "unrealizedPL": a["unrealizedPL"]}

    def _order(self, order) -> dict:
        d = order.to_bitget()
        d["instId"] = d.pop("symbol")
        d["accBaseVolume"] = d["baseVolume"]
        d["fillNotionalUsd"] = d["quoteVolume"]
        last = self.sim.engines[order.symbol].market.last
        d["notionalUsd"] = num(order.size * (order.avg_price or order.price or last))
        d["feeDetail"] = [{"feeCoin": "USDT", "fee": num(-order.fee)}]
        d["fillFeeDetail"] = fee_detail_json(order.fee)
        return d

    def _plan(self, plan) -> dict:
        d = plan.to_bitget()
        d["instId"] = d.pop("symbol")
        d["status"] = plan.status
        return d

    def _fill(self, fill) -> dict:
        d = fill.to_bitget()
        d["instId"] = d["symbol"]
        return d

    def collect_account_events(self) -> list:
        """Drain every engine's events into ``(channel, instId or None, data, action)`` payloads
        (call under the simulator's lock)."""
        events = []
        for e in self.sim.engines.values():
            events += e.events
            e.events = []
        out: list = []
        if not self.conns:
            return out
        seen_pos = seen_acc = False
        for kind, obj in events:
            if kind == "orders":
                out.append(("orders", None, [self._order(obj)], "snapshot"))
            elif kind == "orders-algo":
                out.append(("orders-algo", None, [self._plan(obj)], "snapshot"))
            elif kind == "fill":
                out.append(("fill", None, [self._fill(obj)], "snapshot"))
            elif kind == "positions":
                seen_pos = True
            elif kind == "account":
                seen_acc = True
        if seen_pos:
            out.append(("positions", None, self._positions(), "snapshot"))
        if seen_acc:
            out.append(("account", None, [self._account()], "snapshot"))
        return out

    def collect_candle_events(self) -> list:
        """Payloads after a candle closed: account events, then per traded symbol its ticker,
        books and newly closed candles."""
        out = self.collect_account_events()
        now = self.sim.market.now_ms
        if not self.conns:
            self.last_candle_push = now
            return out
        grans = {arg["channel"][6:] for c in list(self.conns) for arg in list(c.subs.values())
                 if arg.get("channel", "").startswith("candle")}
        for inst, e in self.sim.engines.items():
            m = e.market
            out.append(("ticker", inst, [self._ticker(inst)], "snapshot"))
            out.append(("books*", inst, self._book(inst), "update"))
            for gran in grans:
                rows = m.candles(gran, limit=1)
                if rows and m.candle_close_ms(gran, int(rows[0][0])) > self.last_candle_push:
                    out.append(("candle" + gran, inst, rows, "update"))
        if not any(ev[0] == "positions" for ev in out) and any(e.position is not None
                                                              for e in self.sim.engines.values()):
            out.append(("positions", None, self._positions(), "snapshot"))
        self.last_candle_push = now
        return out

    async def send_events(self, events: list) -> None:
        for conn in list(self.conns):
            for arg in list(conn.subs.values()):
                channel = arg.get("channel", "")
                for kind, inst, data, action in events:
                    if inst is not None and arg.get("instId") != inst:
                        continue
                    if kind == channel or (kind == "books*" and channel.startswith("books")):
                        await self._push(conn, arg, data, action)

    # ---- faults / shutdown --------------------------------------------------------------------------
    async def drop(self, which: str) -> None:
        for conn in list(self.conns):
            if which == "all" or (which == "private") == conn.private:
                self.conns.discard(conn)
                await conn.ws.close(code=1011, message=b"simulated drop")

    async def close_all(self) -> None:
        for conn in list(self.conns):
            self.conns.discard(conn)
            try:
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), 1.0)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                pass


def _delta(prev: list, new: list, reverse: bool) -> list:
    """Levels of ``new`` that differ from ``prev``, plus removed prices at size "0" (Bitget update)."""
    old = {p: s for p, s in prev}
    cur = {p: s for p, s in new}
    changed = [[p, s] for p, s in new if old.get(p) != s]
    removed = [[p, "0"] for p in old if p not in cur]
    return sorted(changed + removed, key=lambda x: float(x[0]), reverse=reverse)

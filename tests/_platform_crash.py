"""Child process of test_platform_trading's crash tests: locks margin for one order (and, with
``send``, marks it sending and calls a venue that never answers), prints LOCKED / SENDING and
waits to be killed with SIGKILL. Usage: python _platform_crash.py URL USER_ID PRICE lock|send"""

import sys
import time
from decimal import Decimal

from perpbot.platform.db import open_engine
from perpbot.platform.profiles import Profiles
from perpbot.platform.trading import OrderRequest, TradeDesk
from perpbot.platform.wallet import Wallet

url, user_id, price, stage = sys.argv[1], int(sys.argv[2]), Decimal(sys.argv[3]), sys.argv[4]
engine = open_engine(url)
desk = TradeDesk(engine, Wallet(engine), Profiles(engine))
order = desk.open_order(user_id, OrderRequest("SOL/USDT:USDT", "buy", Decimal("0.5"), Decimal("2"), price=price,
                                              client_order_id=f"crash-{stage}"))
print("LOCKED", order.id, flush=True)
if stage == "send":
    def never_answers(_order):
        print("SENDING", flush=True)
        time.sleep(600)
    desk.send(order.id, never_answers)
time.sleep(600)

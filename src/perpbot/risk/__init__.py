"""perpbot.risk: the one risk engine (:mod:`perpbot.risk.rules`) — entry vetoes, halts,
cooldown, minimum size and the leverage cap, shared by the account loop and the live loop — and
the portfolio value-at-risk / stress report by historical simulation (:mod:`perpbot.risk.var`)."""

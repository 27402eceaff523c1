"""Parsing and checks of single setting values (the bodies of :class:`perpbot.config.Settings`'
field validators). Each raises ValueError with a one-line message that never repeats a secret."""

from __future__ import annotations

from typing import Any

from perpbot.masking import remember

#: the factors ``perpbot pairs`` can weight (``pairs_weights``)
PAIR_FACTORS = ("volatility", "volume", "momentum", "trend", "funding", "oi_change", "spread")


def parse_feature_groups(value: Any, known: tuple[str, ...]) -> list[str]:
    """Group names (a list, or "candles,htf" from the environment), in ``known`` order.
    Raises ValueError for an unknown group or none."""
    if isinstance(value, str):
        value = value.strip().removeprefix("[").removesuffix("]").replace('"', "").replace("'", "").split(",")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of feature groups from {', '.join(known)}")
    wanted = [str(v).strip() for v in value if str(v).strip()]
    bad = [v for v in wanted if v not in known]
    if bad or not wanted:
        what = f"unknown feature group {bad[0]!r}" if bad else "no feature group selected"
        raise ValueError(f"{what}; choose from {', '.join(known)}")
    return [g for g in known if g in wanted]


def check_pair_weights(value: dict[str, float]) -> dict[str, float]:
    """Factor -> weight of the pair selector; raises ValueError for an unknown factor or all-zero weights."""
    bad = sorted(set(value) - set(PAIR_FACTORS))
    if bad:
        raise ValueError(f"unknown factor(s) {', '.join(bad)}; known: {', '.join(PAIR_FACTORS)}")
    if not any(w != 0 for w in value.values()):
        raise ValueError("at least one factor needs a non-zero weight")
    return value


def parse_addresses(value: Any) -> Any:
    """E-mail addresses: a list, or "a@x, b@y" / '["a@x"]' from the environment."""
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]")
        value = [p.strip().strip("\"'") for p in text.split(",") if p.strip()]
    return value


def check_ledger_url(value: str | None) -> str | None:
    """A SQLAlchemy URL whose dialect is installed (None / blank: the default SQLite file); its
    password is remembered for masking. The message never repeats the URL."""
    if value is None or not value.strip():
        return None
    from sqlalchemy.engine import make_url

    try:
        url = make_url(value)
    except Exception:
        raise ValueError("not a database URL; expected e.g. sqlite:///runs/perpbot.db or "
                         "postgresql+psycopg://user@host/db") from None
    remember(url.password if isinstance(url.password, str) else None)
    try:
        url.get_dialect()
    except Exception:
        raise ValueError(f"unknown database dialect {url.drivername!r}; use sqlite:/// or "
                         "postgresql+psycopg://") from None
    return value

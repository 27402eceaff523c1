"""Platform endpoints, part 1: login, API keys, users (admin), the caller's profile, stats and
exchange keys, risk profiles. Part 2 (wallet, orders, oracle, chain, journal) is
:mod:`perpbot.api.platform_money_routes`. :func:`include_platform` adds both to an app.

Roles: viewer reads its own data; trader also moves its own money, trades, stores exchange keys
and picks its risk profile; admin also manages users, risk profiles, the contract's policy, the
audit log and the journal. No route ever returns another user's wallet, orders, keys or stats,
a password hash, an API key after its creation, or an exchange credential.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from perpbot.api import platform_models as pm
from perpbot.api.platform_auth import ERRORS, PREFIX, client_of, install_error_handlers, role_dependency
from perpbot.platform.access import Principal



def row_id(what: str):
    """A fresh ``Path`` spec per route (FastAPI fills a shared one in with the first route's name)."""
    return Path(..., ge=1, le=2_147_483_647, description=f"id of the {what}")


def _user_out(u) -> dict:
    return {"id": u.id, "username": u.username, "role": u.role, "risk_profile": u.risk_profile,
            "disabled": u.disabled, "created_at": u.created_at}


def _key_out(k) -> dict:
    return {"id": k.id, "name": k.name, "prefix": k.prefix, "role": k.role, "created_at": k.created_at,
            "last_used_at": k.last_used_at, "revoked_at": k.revoked_at}


def access_router(platform) -> APIRouter:
    """Routes of login, API keys, users, profile, stats, exchange keys and risk profiles."""
    role = role_dependency(platform)
    r = APIRouter(prefix=PREFIX, responses=ERRORS)
    viewer, trader, admin = role("viewer"), role("trader"), role("admin")

    # ------------------------------------------------------------------ login
    @r.post("/auth/token", response_model=pm.TokenOut, tags=["platform: access"], summary="Log in (OAuth2 password flow)",
            responses={401: {"description": "wrong user name or password"}, 423: {"description": "account locked"},
                       429: {"description": "too many attempts from this client"}})
    def login(request: Request, form: OAuth2PasswordRequestForm = Depends()):
        """Form fields ``username`` and ``password``; returns a short-lived bearer token."""
        user = platform.access.authenticate(form.username, form.password, client=client_of(request))
        token, ttl = platform.access.issue_token(user)
        return {"access_token": token, "token_type": "bearer", "expires_in": ttl}

    @r.get("/auth/me", response_model=pm.MeOut, tags=["platform: access"], summary="Who am I")
    def me(who: Principal = Depends(viewer)):
        return {"user_id": who.user_id, "username": who.username, "role": who.role, "via": who.via}

    @r.post("/auth/api-keys", response_model=pm.ApiKeyCreatedOut, status_code=201, tags=["platform: access"],
            summary="Create an API key for a bot (shown once)")
    def create_key(body: pm.ApiKeyIn, request: Request, who: Principal = Depends(viewer)):
        if body.role is not None and who.via == "api_key":
            raise HTTPException(403, "an API key cannot create keys of another role")
        key, row = platform.access.create_api_key(who.user_id, body.name, body.role or who.role,
                                                  client=client_of(request))
        return {**_key_out(row), "key": key}

    @r.get("/auth/api-keys", response_model=pm.ApiKeysOut, tags=["platform: access"], summary="My API keys")
    def list_keys(who: Principal = Depends(viewer)):
        return {"api_keys": [_key_out(k) for k in platform.access.list_api_keys(who.user_id)]}

    @r.delete("/auth/api-keys/{key_id}", status_code=204, response_class=Response, tags=["platform: access"],
              summary="Revoke one of my API keys", responses={404: {"description": "no such key of yours"}})
    def revoke_key(request: Request, key_id: int = row_id("API key"), who: Principal = Depends(viewer)):
        if not platform.access.revoke_api_key(who.user_id, key_id, client=client_of(request)):
            raise HTTPException(404, f"you have no active API key {key_id}")
        return Response(status_code=204)

    # ------------------------------------------------------------------ users (admin)
    @r.post("/users", response_model=pm.UserOut, status_code=201, tags=["platform: admin"], summary="Create a user")
    def create_user(body: pm.UserIn, request: Request, who: Principal = Depends(admin)):
        user = platform.access.create_user(body.username, body.password, body.role, risk_profile=body.risk_profile,
                                           actor_id=who.user_id, client=client_of(request))
        return _user_out(user)

    @r.get("/users", response_model=pm.UsersOut, tags=["platform: admin"], summary="All users")
    def list_users(_who: Principal = Depends(admin)):
        return {"users": [_user_out(u) for u in platform.access.list_users()]}

    @r.patch("/users/{user_id}", response_model=pm.UserOut, tags=["platform: admin"],
             summary="Change a user's role, disabled flag or risk profile",
             responses={404: {"description": "unknown user"}, 409: {"description": "an admin's own demotion"}})
    def patch_user(body: pm.UserPatch, request: Request, user_id: int = row_id("user"), who: Principal = Depends(admin)):
        if user_id == who.user_id and (body.disabled or (body.role is not None and body.role != "admin")):
            raise HTTPException(409, "an admin cannot disable or demote their own account")
        try:
            user = platform.access.update_user(user_id, actor_id=who.user_id, client=client_of(request),
                                               role=body.role, disabled=body.disabled, risk_profile=body.risk_profile)
        except KeyError:
            raise HTTPException(404, f"user {user_id} not found") from None
        return _user_out(user)

    @r.get("/audit", response_model=pm.AuditListOut, tags=["platform: admin"], summary="Audit log (newest first)")
    def audit(limit: int = Query(100, ge=1, le=1000), _who: Principal = Depends(admin)):
        return {"events": [{"id": e.id, "time": e.time, "actor_id": e.actor_id, "action": e.action, "target": e.target,
                            "client": e.client, "detail": e.detail} for e in platform.access.audit_log(limit)]}

    # ------------------------------------------------------------------ risk profiles
    @r.get("/risk-profiles", response_model=pm.RiskProfilesOut, tags=["platform: profile"], summary="The risk profiles")
    def risk_profiles(_who: Principal = Depends(viewer)):
        return {"profiles": [p.as_dict() for p in platform.profiles.all().values()]}

    @r.put("/risk-profiles/{name}", response_model=pm.RiskProfileOut, tags=["platform: admin"],
           summary="Edit a risk profile's numbers")
    def edit_profile(body: pm.RiskProfileIn, request: Request, name: pm.ProfileName = Path(...),
                     who: Principal = Depends(admin)):
        try:
            p = platform.profiles.update(name, actor_id=who.user_id, **body.model_dump())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        platform.access.audit("risk_profile_edited", actor_id=who.user_id, target=f"risk_profile:{name}",
                              client=client_of(request), detail=p.as_dict())
        return p.as_dict()

    # ------------------------------------------------------------------ the caller
    def profile_of(who: Principal) -> dict:
        user = platform.access.get_user(who.user_id)
        return {"user_id": user.id, "username": user.username, "role": who.role,
                "risk_profile": platform.profiles.get(user.risk_profile).as_dict()}

    @r.get("/user/profile", response_model=pm.ProfileOut, tags=["platform: profile"], summary="My profile")
    def get_profile(who: Principal = Depends(viewer)):
        return profile_of(who)

    @r.put("/user/profile", response_model=pm.ProfileOut, tags=["platform: profile"], summary="Pick my risk profile")
    def put_profile(body: pm.ProfileIn, request: Request, who: Principal = Depends(trader)):
        platform.access.update_user(who.user_id, actor_id=who.user_id, client=client_of(request),
                                    risk_profile=body.risk_profile)
        return profile_of(who)

    @r.get("/user/stats", response_model=pm.StatsOut, tags=["platform: profile"], summary="My trading statistics")
    def stats(who: Principal = Depends(viewer)):
        return platform.stats(who.user_id)

    @r.get("/user/exchange-keys", response_model=pm.ExchangeKeysOut, tags=["platform: profile"],
           summary="My stored exchange keys (never the key or secret)")
    def list_exchange_keys(who: Principal = Depends(trader)):
        return {"exchange_keys": [vars(k) for k in platform.keys.list(who.user_id)]}

    @r.put("/user/exchange-keys/{exchange}", response_model=pm.ExchangeKeyOut, tags=["platform: profile"],
           summary="Store (encrypted) my API key for an exchange")
    def put_exchange_key(body: pm.ExchangeKeyIn, request: Request,
                         exchange: str = Path(..., pattern=r"^[a-z0-9_.-]{1,32}$", description="ccxt id"),
                         who: Principal = Depends(trader)):
        creds = {"api_key": body.api_key, "secret": body.secret, "password": body.password}
        info = platform.keys.put(who.user_id, exchange, creds, label=body.label)
        platform.access.audit("exchange_key_stored", actor_id=who.user_id, target=f"exchange_key:{info.id}",
                              client=client_of(request), detail={"exchange": exchange, "label": body.label})
        return vars(info)

    @r.delete("/user/exchange-keys/{key_id}", status_code=204, response_class=Response, tags=["platform: profile"],
              summary="Delete one of my exchange keys", responses={404: {"description": "no such key of yours"}})
    def delete_exchange_key(request: Request, key_id: int = row_id("exchange key"), who: Principal = Depends(trader)):
        if not platform.keys.delete(who.user_id, key_id):
            raise HTTPException(404, f"you have no exchange key {key_id}")
        platform.access.audit("exchange_key_deleted", actor_id=who.user_id, target=f"exchange_key:{key_id}",
                              client=client_of(request))
        return Response(status_code=204)

    return r


def include_platform(app: FastAPI, platform) -> None:
    """Add every platform route, its error handlers and its web pages (:mod:`perpbot.api.platform_pages`)
    to ``app`` (``platform``: a :class:`perpbot.platform.service.Platform`), and reconcile orders a crash
    left behind."""
    from perpbot.api.platform_money_routes import money_router
    from perpbot.api.platform_pages import page_router

    install_error_handlers(app)
    app.include_router(access_router(platform))
    app.include_router(money_router(platform))
    app.include_router(page_router())
    app.state.platform = platform
    platform.start()

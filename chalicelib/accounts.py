"""Channel accounts: the brand's pages, numbers and bots that deliveries are routed to.

Reads are cached on the runtime (a known account for a minute, an unknown one for seconds);
registering or changing an account in this process forgets the cached answer at once.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict, Mapping, Optional

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.models import ChannelAccount
from chalicelib.runtime import runtime

#: Page ids, phone number ids, bot ids, user ids, URNs ("urn:li:organization:1").
ACCOUNT_ID = re.compile(r"[A-Za-z0-9:._@+=-]{1,128}")
NAME_MAX = 200
MAX_CREDENTIAL_REFS = 20


class AccountExists(Exception):
    """The channel account is already registered (an update is an explicit PATCH)."""


def checked_settings(body: Mapping[str, Any], creating: bool) -> Dict[str, Any]:
    """The account settings of an admin's request, checked (BadInput says which field is wrong):
    `platform_account_id` (when creating), `name`, `team`, `credential_refs`; absent ones are None."""
    from chalicelib import inputs
    from chalicelib.config import credential_ref_allowed
    from chalicelib.routing.directory import valid_team

    found: Dict[str, Any] = {}
    if creating:
        account_id = body.get("platform_account_id")
        if not isinstance(account_id, str) or not ACCOUNT_ID.fullmatch(account_id):
            raise inputs.BadInput("platform_account_id must be 1 to 128 letters, digits or ':._@+=-'")
        found["platform_account_id"] = account_id
    name = body.get("name")
    if name is not None or creating:
        name = inputs.text(name, "name", 1, NAME_MAX).strip()
    found["name"] = name
    team = body.get("team")
    if team is not None and not valid_team(team):
        raise inputs.BadInput("team names are 1-64 letters, digits, '.', '_' or '-'")
    found["team"] = team
    refs = body.get("credential_refs")
    if refs is not None:
        if not isinstance(refs, dict) or len(refs) > MAX_CREDENTIAL_REFS or (not creating and not refs):
            raise inputs.BadInput(f"credential_refs must map 1 to {MAX_CREDENTIAL_REFS} credential names "
                                  "to secret names")
        wrong = [key for key, value in refs.items() if not credential_ref_allowed(key, value)]
        if wrong:
            raise inputs.BadInput("credential_refs maps a platform credential (e.g. META_PAGE_TOKEN) to that name "
                                  "or that name with a suffix (META_PAGE_TOKEN_PAGE1); not "
                                  + ", ".join(sorted(repr(str(key)[:64]) for key in wrong if inputs.is_clean(key))[:3]))
    found["credential_refs"] = refs
    return found


def find_account(channel: str, platform_account_id: str) -> Optional[ChannelAccount]:
    """The configured account, or None; cached per container."""
    key = ChannelAccount.key_for(channel, platform_account_id)
    cached = runtime.accounts.get(key)
    now = time.monotonic()
    if cached is not None:
        at, account = cached
        ttl = runtime.ACCOUNT_CACHE_SECONDS if account is not None else runtime.UNKNOWN_ACCOUNT_CACHE_SECONDS
        if now - at < ttl:
            return account
    try:
        account: Optional[ChannelAccount] = ChannelAccount.get(key)
    except DoesNotExist:
        account = None
    runtime.accounts[key] = (now, account)
    return account


def register_account(channel: str, platform_account_id: str, name: str,
                     credential_refs: Optional[Dict[str, str]] = None, team: Optional[str] = None) -> ChannelAccount:
    """Create an account; AccountExists if it is already there (never a silent overwrite)."""
    account = ChannelAccount(
        ChannelAccount.key_for(channel, platform_account_id), channel=channel,
        platform_account_id=platform_account_id, name=name, credential_refs=credential_refs or {},
        enabled=True, created_at=runtime.now_ms(), team=team,
    )
    try:
        account.save(condition=ChannelAccount.account_key.does_not_exist())
    except PutError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            raise AccountExists(account.account_key) from error
        raise
    finally:
        forget_account(account.account_key)
    return account


def update_account(channel: str, platform_account_id: str, *, name: Optional[str] = None,
                   enabled: Optional[bool] = None, team: Optional[str] = None,
                   credential_refs: Optional[Dict[str, str]] = None) -> Optional[ChannelAccount]:
    """Change an existing account's settings; None if there is no such account."""
    key = ChannelAccount.key_for(channel, platform_account_id)
    actions = []
    if name is not None:
        actions.append(ChannelAccount.name.set(name))
    if enabled is not None:
        actions.append(ChannelAccount.enabled.set(enabled))
    if team is not None:
        actions.append(ChannelAccount.team.set(team))
    if credential_refs is not None:  # reconnected: replies are sent again
        actions += [ChannelAccount.credential_refs.set(credential_refs), ChannelAccount.needs_reauth.remove(),
                    ChannelAccount.needs_reauth_reason.remove(), ChannelAccount.needs_reauth_at.remove()]
    account = ChannelAccount(key)
    try:
        if actions:
            account.update(actions=actions, condition=ChannelAccount.account_key.exists())
        account.refresh(consistent_read=True)
    except Exception as error:  # noqa: BLE001 - a missing account is a 404, not a 500
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException" or isinstance(
                error, DoesNotExist):
            return None
        raise
    finally:
        forget_account(key)
    return account


def forget_account(account_key: str) -> None:
    runtime.accounts.pop(account_key, None)


def credential_refs(account: Any) -> Dict[str, str]:
    """An account's credential refs as a plain dict (logical secret name -> real name)."""
    refs = account.credential_refs
    if hasattr(refs, "as_dict"):
        refs = refs.as_dict()
    return {str(k): str(v) for k, v in dict(refs or {}).items() if isinstance(v, str)}

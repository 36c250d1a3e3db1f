"""The channels' names as their brands spell them, for every text a person reads ("LinkedIn",
never "Linkedin"; str.capitalize() gets several of them wrong)."""
from __future__ import annotations

BRANDS = {"messenger": "Messenger", "instagram": "Instagram", "whatsapp": "WhatsApp", "facebook": "Facebook",
          "x": "X", "telegram": "Telegram", "linkedin": "LinkedIn"}


def brand(channel: str) -> str:
    """The brand's own spelling of a channel key; an unknown key is shown as it is."""
    return BRANDS.get(channel, channel)


def unnamed_contact(channel: str, platform_id: str) -> str:
    """What a contact without a name or handle is called. A LinkedIn member id is an opaque URN
    and LinkedIn gives the name only where the organization's permissions allow, so it is
    "LinkedIn member"; elsewhere the id's last digits tell two customers apart."""
    if not platform_id:
        return "Unknown contact"
    if channel == "linkedin":
        return "LinkedIn member"
    return f"{brand(channel)} user \u2026{platform_id[-4:]}"

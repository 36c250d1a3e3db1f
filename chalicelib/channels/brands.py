"""The channels' names as their brands spell them, for every text a person reads ("LinkedIn",
never "Linkedin"; str.capitalize() gets several of them wrong)."""
from __future__ import annotations

BRANDS = {"messenger": "Messenger", "instagram": "Instagram", "whatsapp": "WhatsApp", "facebook": "Facebook",
          "x": "X", "telegram": "Telegram", "linkedin": "LinkedIn"}


def brand(channel: str) -> str:
    """The brand's own spelling of a channel key; an unknown key is shown as it is."""
    return BRANDS.get(channel, channel)

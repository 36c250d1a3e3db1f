"""The log entry a conversation item carries until it is in the event log, packed small.

A logged change is one conditional UpdateItem of the conversation plus one put into the event
log (no transaction: it would bill both items twice). The update carries the entry so that a
crash between the two writes loses nothing (chalicelib.inbox.store settles it). A conversation
item is 800-860 bytes with a realistic preview; the entry as JSON is 170-260 bytes, which would
take the item past 1 KB, where every write of it costs two units. Packed as raw DEFLATE with a
preset dictionary of the entries' own vocabulary it is 60-90 bytes.

The dictionary is part of the stored format: never edit PRESET_V1; add a PRESET_V2 with a new
leading version byte and keep decoding version 1.
"""
from __future__ import annotations

import json
import zlib
from typing import Any, Dict, Optional

VERSION_1 = b"\x01"
PRESET_V1 = (
    b'"first":true,"previous":"resolved","policy_id":"default","response_ms":"by":"from":null,"to":"turn":'
    b'"thread_kind":"dm","channel":"messenger","whatsapp","instagram","team":"support","account_id":"'
    b'"awaiting_since":17,"due_at":17,"warn_at":17,"message_id":"m_'
    b'["created","customer",["awaiting_reply","customer",["replied","agent",["assigned","agent:'
    b'["status_changed","agent:["read","agent:[1,17'
)


def pack(seq: int, at: int, entry_type: str, actor: str, data: Optional[Dict[str, Any]]) -> bytes:
    """An entry as stored on the conversation item (deterministic for the same entry)."""
    text = json.dumps([seq, at, entry_type, actor, data or None], separators=(",", ":"), ensure_ascii=False)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PRESET_V1)
    return VERSION_1 + packer.compress(text.encode("utf-8")) + packer.flush()


def unpack(blob: bytes) -> Dict[str, Any]:
    """{"seq", "at", "type", "actor", "data"} of a packed entry."""
    if blob[:1] != VERSION_1:
        raise ValueError(f"unknown pending log entry format {blob[:1]!r}")
    unpacker = zlib.decompressobj(-15, PRESET_V1)
    seq, at, entry_type, actor, data = json.loads(unpacker.decompress(blob[1:]) + unpacker.flush())
    return {"seq": int(seq), "at": int(at), "type": entry_type, "actor": actor, "data": data}

"""Conversation core: the rules of a conversation (rules.py, pure) and the one store that
writes conversations, messages and the conversation event log (store.py)."""

"""The agent API: login, the inbox views, and admin odds and ends."""

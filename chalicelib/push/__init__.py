"""Live updates pushed, not polled (issue 21): an API Gateway WebSocket API tells each agent's page
which conversations changed in the views it may see; the page then fetches them as before.

- `connections`: connect (access token checked, never logged), token renewal, disconnect, and
  closing every socket of an agent whose tokens were revoked (deactivation, password change).
- `fanout`: the consumer of the conversations table's stream (every change of a conversation,
  the store's one-write follow-ups included): one small hint per connection per batch, scoped to
  the feeds the connection listens to, so nobody learns of another team's conversation.
- `handlers`: the WebSocket routes ($connect, $default, $disconnect) as Chalice calls them, in
  AWS and in `make run` (chalicelib.local.websocket) alike.
"""

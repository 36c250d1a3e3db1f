"""Listening: sentiment, language and topics on what customers write, and (with the channel
adapters) the posts that mention our accounts.

Layering: this package sits ABOVE chalicelib.inbox. The conversation store knows nothing of it:
ingest asks the runtime's injected annotator (`runtime.annotator()`, wired to
`chalicelib.listening.annotate:annotate`) for a message's annotations before the store records
it, and the store keeps them as opaque data (`Message.annotations`, and on the conversation the
latest customer message's flat `inbound_labels`). Computing them in the same pass as the write
costs no extra DynamoDB request; a stream consumer would cost one more write per message and
show agents an unannotated message first.

Modules: text.py (folding, tokens, stemming), language.py (a small offline detector),
sentiment.py (VADER for English, "unscored" otherwise), topics.py (admin-edited topics:
validation, storage, matching), annotate.py (the ingest hook, message fields, corrections),
items.py (mentions and found posts), priority.py (admins' priority rules), x_search.py and
ig_hashtags.py (the search pollers), spikes.py (hourly spike and sentiment-dip alerts), http.py
(the pollers' one authenticated GET), trends.py (the topics report: sentiment per day, share of
voice, top authors, read in one bounded Query).
"""

"""Ingest: the webhook ack path (verify, enqueue), the queue processor and the record pipeline."""

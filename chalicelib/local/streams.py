"""The local DynamoDB stream event source: delivers a table's stream records to the app's
`@app.on_dynamodb_record` handler the way Lambda's event source mapping does.

- Any stream ARN of the form `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`
  names its table; the records come from that table's *actual* stream (DescribeTable's
  LatestStreamArn), so a placeholder label in the app's configuration still finds them. A table
  without a stream is refused when the runner starts (`StreamNotFound`), never silently idle.
- Each shard is read in order (GetShardIterator from the mapping's starting position, then
  GetRecords) in batches of up to the mapping's batch size, gathered for up to its batching
  window, in Lambda's event shape (`eventSourceARN` the stream's ARN,
  `ApproximateCreationDateTime` in epoch seconds).
- A batch whose handler raises is retried, the same records in the same order, and the shard
  waits behind it: what Lambda does for a stream mapping with Chalice's defaults (no retry limit,
  no bisecting, no partial batch responses).
"""
from __future__ import annotations

import datetime as dt
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from chalicelib import aws, config
from chalicelib.logs import describe_error, logger

Handler = Callable[[Dict[str, Any], Any], Any]

_STREAM_ARN = re.compile(r"arn:aws[a-zA-Z-]*:dynamodb:[a-z0-9-]*:[0-9]*:table/([A-Za-z0-9_.-]{3,255})/stream/.+")
#: Pause between two reads of a shard that had nothing new (Lambda polls a shard ~4 times a second).
POLL_SECONDS = 0.25
#: Pause before a failed batch is delivered again.
RETRY_SECONDS = 1.0


def streams_client() -> Any:
    """A DynamoDB Streams client that calls the regional endpoint: botocore otherwise derives
    `<account>.streams-ddb.<region>.amazonaws.com` from a stream ARN, which moto does not serve
    (an AWS_ENDPOINT_URL, as `make run` sets, wins either way)."""
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "dynamodbstreams", region_name=config.aws_region(),
        config=botocore.config.Config(account_id_endpoint_mode="disabled"))


class StreamNotFound(RuntimeError):
    """The table an event source names has no stream (or does not exist): refused at startup."""


def table_of(stream_arn: str) -> str:
    """The table a DynamoDB stream ARN names; ValueError for anything else."""
    match = _STREAM_ARN.fullmatch(stream_arn or "")
    if not match:
        raise ValueError(f"not a DynamoDB stream ARN: {stream_arn!r} "
                         "(expected arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>)")
    return match.group(1)


def latest_stream_arn(stream_arn: str) -> str:
    """The ARN of the stream the named table really has; StreamNotFound when it has none."""
    table = table_of(stream_arn)
    client = aws.client("dynamodb")
    try:
        description = client.describe_table(TableName=table)["Table"]
    except client.exceptions.ResourceNotFoundException as error:
        raise StreamNotFound(f"{stream_arn}: table {table} does not exist") from error
    actual = description.get("LatestStreamArn")
    enabled = (description.get("StreamSpecification") or {}).get("StreamEnabled")
    if not actual or enabled is False:
        raise StreamNotFound(f"{stream_arn}: table {table} has no stream enabled (StreamSpecification in "
                             "infra/resources.json)")
    return actual


def lambda_record(record: Dict[str, Any], stream_arn: str) -> Dict[str, Any]:
    """A GetRecords record as Lambda delivers it."""
    shaped = dict(record)
    change = dict(shaped.get("dynamodb") or {})
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    shaped["dynamodb"] = change
    shaped["eventVersion"] = "1.1"  # what Lambda delivers (GetRecords says 1.0)
    shaped.setdefault("eventSource", "aws:dynamodb")
    shaped.setdefault("awsRegion", config.aws_region())
    shaped["eventSourceARN"] = stream_arn
    return shaped


class _Shard:
    def __init__(self, shard_id: str, iterator: Optional[str]) -> None:
        self.shard_id, self.iterator = shard_id, iterator
        self.pending: List[Dict[str, Any]] = []  # fetched, not yet handled successfully


class StreamReader(threading.Thread):
    """One DynamoDB stream event source mapping of `make run`. `prepare()` (called by start())
    resolves the table's stream and positions every shard; it raises StreamNotFound."""

    def __init__(self, handler: Handler, stream_arn: str, function_name: str, batch_size: int = 100,
                 starting_position: str = "LATEST", window_seconds: float = 0.0,
                 context_factory: Optional[Callable[[str], Any]] = None, retry_seconds: float = RETRY_SECONDS) -> None:
        super().__init__(name=f"{function_name}-stream", daemon=True)
        self.retry_seconds = retry_seconds
        self.handler, self.configured_arn, self.function_name = handler, stream_arn, function_name
        self.batch_size, self.window_seconds = max(1, batch_size), max(0.0, window_seconds)
        self.starting_position = starting_position or "LATEST"
        self.table = table_of(stream_arn)
        self.stream_arn: Optional[str] = None
        self._context_factory = context_factory
        self._shards: List[_Shard] = []
        self._streams: Any = None
        self._stopping = threading.Event()

    def prepare(self) -> None:
        self.stream_arn = latest_stream_arn(self.configured_arn)
        self._streams = streams = streams_client()
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", [])
        self._shards = [_Shard(s["ShardId"], streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=s["ShardId"],
            ShardIteratorType=self.starting_position)["ShardIterator"]) for s in shards]

    def start(self) -> None:
        if self.stream_arn is None:
            self.prepare()
        super().start()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.poll_once()
            except Exception as error:  # noqa: BLE001 - keep reading; the emulator may be restarting
                logger.warning("local stream reader error", extra={"function": self.function_name,
                                                                   "error": describe_error(error)[:300]})
                busy = False
            if not busy:
                self._stopping.wait(POLL_SECONDS)

    def poll_once(self) -> bool:
        """Read and deliver one batch per shard; True when any shard had records."""
        busy = False
        for shard in self._shards:
            if self._stopping.is_set():
                break
            self._fill(shard)
            if not shard.pending:
                continue
            busy = True
            batch = shard.pending[:self.batch_size]
            if self._deliver(batch):
                del shard.pending[:len(batch)]
            else:
                self._stopping.wait(self.retry_seconds)
        return busy

    def _fill(self, shard: _Shard) -> None:
        """Fetch records until the shard has a full batch waiting or its window has passed."""
        if shard.iterator is None or len(shard.pending) >= self.batch_size:
            return
        streams = self._streams
        deadline = time.monotonic() + self.window_seconds
        while shard.iterator is not None and len(shard.pending) < self.batch_size:
            answer = streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size - len(shard.pending))
            shard.iterator = answer.get("NextShardIterator")
            shard.pending += answer.get("Records", [])
            if not answer.get("Records"):
                if not shard.pending or time.monotonic() >= deadline or self._stopping.is_set():
                    return
                self._stopping.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _deliver(self, batch: List[Dict[str, Any]]) -> bool:
        event = {"Records": [lambda_record(record, self.stream_arn or self.configured_arn) for record in batch]}
        context = self._context_factory(self.function_name) if self._context_factory else None
        try:
            self.handler(event, context)
        except Exception as error:  # noqa: BLE001 - Lambda retries the batch; so do we
            logger.warning("local stream: batch failed, it is delivered again",
                           extra={"function": self.function_name, "records": len(batch),
                                  "error": describe_error(error)[:300]})
            return False
        return True

    def stop(self) -> None:
        self._stopping.set()

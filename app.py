"""socialinbox: Chalice entry point. Routes and event handlers only; the work is in chalicelib."""
import gc
from typing import Any, Callable, Dict

from chalice import Chalice, Rate, Response

from chalicelib import config, tracing

config.refuse_local_stage_in_aws()  # first: a deployed function never starts with the local defaults
from chalicelib.http_headers import SECURITY_HEADERS  # noqa: F401 (make run's gateway reads it here)



class SocialInbox(Chalice):
    """The REST API's handler also answers the API function's own Lambda function URL (issue 21:
    no API Gateway charge per request): its payload format 2.0 events are translated to the REST
    event Chalice expects and back (chalicelib.api.function_url), so every route serves both."""

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        if isinstance(event, dict) and event.get("version") == "2.0":
            from chalicelib.api.function_url import is_function_url_event, serve

            if is_function_url_event(event):
                return serve(event, context, self.routes, super().__call__)
        return super().__call__(event, context)


# configure_logs=False: Chalice would add a plain-text handler to the "socialinbox" logger, which
# is also our JSON logger (chalicelib.logs), and every line would be written twice.
app = SocialInbox(app_name="socialinbox", configure_logs=False)
# Live updates (chalicelib.push): Chalice deploys the WebSocket API and its three handlers itself.
app.experimental_feature_flags.update(["WEBSOCKETS"])

# The webhooks' own function answers function URL events only: it registers (imports) no route.
if config.serves_routes():
    from chalicelib.api.admin_routes import admin_api
    from chalicelib.api.analytics_routes import analytics_api
    from chalicelib.api.bulk_routes import bulk_api
    from chalicelib.api.canned_routes import canned_api
    from chalicelib.api.collision_routes import collision_api
    from chalicelib.api.health_routes import health_api
    from chalicelib.api.listening_routes import listening_api
    from chalicelib.api.contact_routes import contact_api
    from chalicelib.api.media_routes import BINARY_TYPES, media_api
    from chalicelib.api.openapi import openapi_api
    from chalicelib.api.people_routes import people_api
    from chalicelib.api.post_routes import post_api
    from chalicelib.api.replies import replies
    from chalicelib.api.report_drill_routes import report_drill_api
    from chalicelib.api.report_routes import reports_api
    from chalicelib.api.routes import api
    from chalicelib.api.search_routes import search_api
    from chalicelib.api.routing_routes import routing_api
    from chalicelib.api.sla_routes import sla_api
    from chalicelib.ingest.routes import webhooks
    from chalicelib.api.staffing_routes import staffing_api
    from chalicelib.web.routes import web

    app.register_blueprint(webhooks)
    app.register_blueprint(api)
    app.register_blueprint(replies)
    app.register_blueprint(routing_api)
    app.register_blueprint(sla_api)
    app.register_blueprint(web)
    app.register_blueprint(bulk_api)
    app.register_blueprint(people_api)
    app.register_blueprint(canned_api)
    app.register_blueprint(search_api)
    app.register_blueprint(collision_api)
    app.register_blueprint(openapi_api)
    app.register_blueprint(media_api)
    app.register_blueprint(post_api)
    app.register_blueprint(health_api)
    app.register_blueprint(contact_api)
    app.register_blueprint(admin_api)
    app.register_blueprint(staffing_api)
    app.register_blueprint(listening_api)
    app.register_blueprint(reports_api)
    app.register_blueprint(report_drill_api)
    app.register_blueprint(analytics_api)
    app.api.binary_types.extend(t for t in BINARY_TYPES if t not in app.api.binary_types)



@app.middleware("http")
def correlation(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """Every HTTP request logs under its own id (API Gateway's request id), never under the id of
    whatever this container handled before; webhooks carry theirs on into the queue."""
    from chalicelib.logs import bind_correlation_id

    bind_correlation_id((getattr(request, "context", None) or {}).get("requestId"))
    return get_response(request)


@app.middleware("http")
def security_headers(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """Browsers must not sniff, frame, leak referrers from or cache what we answer: API answers
    carry agents' conversations (never stored by a cache: no-store, whatever the route says);
    the web page keeps its own CSP and revalidation policy."""
    response = get_response(request)
    present = {name.lower() for name in response.headers}
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            response.headers[name] = value
    if (request.path or "").startswith("/api/"):
        for name in [n for n in response.headers if n.lower() == "cache-control"]:
            del response.headers[name]
        response.headers["Cache-Control"] = "no-store"
    elif "cache-control" not in present:
        response.headers["Cache-Control"] = "no-store"
    return response


@app.lambda_function(name=config.WEBHOOKS_FUNCTION)
def webhook_url(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """The platforms' webhooks through the function's own URL (no API Gateway; the signature
    checks are the gate): the same handshakes and verified enqueue as the REST route
    /webhooks/{platform}, which stays for deployments moving over (docs/DEPLOY.md)."""
    from chalicelib.ingest.function_url import handle

    return handle(event)


# Batching windows where a second of latency costs nothing: under light traffic SQS would otherwise
# invoke once per message (each invocation is a Lambda request and a poll). Replies get none.
@app.on_sqs_message(queue=config.queue_name(config.INGEST_QUEUE), batch_size=10, name="ingest_processor",
                    maximum_batching_window_in_seconds=1)
def ingest_processor(event: Any) -> Dict[str, Any]:
    """Normalise accepted deliveries into contacts, conversations and messages."""
    tracing.activate()
    from chalicelib.ingest.processor import partial_batch_responses, process_records, record_dicts

    return process_records(record_dicts(event), partial=partial_batch_responses())


@app.on_sqs_message(queue=config.queue_name(config.SLA_TIMER_QUEUE), batch_size=10, name="sla_timers",
                    maximum_batching_window_in_seconds=5)
def sla_timers(event: Any) -> Dict[str, Any]:
    """The reply-deadline flow's warning and breach messages (stale ones are dropped)."""
    tracing.activate()
    from chalicelib.ingest.processor import partial_batch_responses, record_dicts
    from chalicelib.sla.timers import handle_records

    return handle_records(record_dicts(event), partial=partial_batch_responses())


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sla_sweeper")
def sla_sweeper(event: Any) -> Dict[str, int]:
    """Arms the warning timers due in 2-3 minutes (the window of the scheduled minute), and the
    safety net: warnings and breaches whose timer was lost or throttled."""
    tracing.activate()
    from chalicelib.sla.timers import scheduled_ms, sweep

    return sweep(scheduled=scheduled_ms(event))


@app.schedule(Rate(1, unit=Rate.MINUTES), name="routing_sweeper")
def routing_sweeper(event: Any) -> Dict[str, int]:
    """Safety net for routing: hand on conversations of agents whose presence expired, and drain
    every team's unassigned backlog."""
    tracing.activate()
    from chalicelib import routing

    return routing.sweep()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="staffing_sampler")
def staffing_sampler(event: Any) -> Dict[str, int]:
    """Agents online and away per team, sampled into 30-minute intervals (staffing's history);
    the nightly forecast and the burst and understaffed alerts."""
    tracing.activate()
    from chalicelib.staffing import sampler

    return sampler.run()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="listening_poller")
def listening_poller(event: Any) -> Dict[str, Any]:
    """X recent search for every topic with the x_search source, within the admin's monthly
    budget of post reads and X's rate limits (chalicelib.listening.x_search); Instagram
    hashtags within their 30 slots (ig_hashtags); then, once an hour, spike and sentiment-dip
    alerts (chalicelib.listening.spikes)."""
    tracing.activate(http=True)
    from chalicelib.listening import ig_hashtags, spikes, x_search

    stats = x_search.poll()
    stats["instagram"] = ig_hashtags.poll()
    stats["alerts"] = spikes.run()
    return stats


@app.schedule(Rate(1, unit=Rate.DAYS), name="analytics_snapshot")
def analytics_snapshot(event: Any) -> Dict[str, Any]:
    """Each channel account's own platform analytics (Page and Instagram insights, LinkedIn share
    and follower statistics, WhatsApp message and pricing analytics, X public metrics of our
    posts) stored per day before the platform forgets them; resumes where a failed run stopped."""
    tracing.activate(http=True)
    from chalicelib.analytics import snapshot

    return snapshot.run()


@app.schedule(Rate(15, unit=Rate.MINUTES), name="profile_refresher")
def profile_refresher(event: Any) -> Dict[str, int]:
    """Customers' profiles (names, pictures, follower counts) looked up again a week after the
    last lookup while they keep writing, and failed lookups retried with backoff: bounded per
    run, read from a sparse index (chalicelib.inbox.contacts.refresh_due_profiles)."""
    tracing.activate(http=True)
    from chalicelib.inbox.contacts import refresh_due_profiles

    return refresh_due_profiles()


@app.on_sqs_message(queue=config.queue_name("outbox"), batch_size=1, name="outbox_worker")
def outbox_worker(event: Any) -> Dict[str, int]:
    """Send queued replies through their channel's adapter (one per invocation: a send may take
    the adapter's whole timeout)."""
    tracing.activate(http=True)
    from chalicelib.ingest.processor import record_dicts
    from chalicelib.outbound.worker import handle_records

    return handle_records(record_dicts(event))


# The reports' consumers wait up to a minute for a batch: a batch writes each counter item once,
# however many records touch it, so at 1M inbound messages a month a 60 s batch costs a quarter of
# what each record alone does (bench/reports_bench.py; docs/COST.md). Reports lag by that minute.
@app.on_dynamodb_record(stream_arn=config.stream_arn(config.EVENT_LOG_TABLE), batch_size=100,
                        name="reports_consumer", maximum_batching_window_in_seconds=60)
def reports_consumer(event: Any) -> Dict[str, int]:
    """Reports read the conversation event log's stream: counters per 15 minutes, exactly once."""
    tracing.activate()
    from chalicelib.reports.consumer import handle_records, record_dicts

    return handle_records(record_dicts(event))


@app.on_ws_connect(name="websocket_connect")
def websocket_connect(event: Any) -> Any:
    """A page opens its live-updates socket with its access token (refused unless valid)."""
    from chalicelib.push import handlers

    return handlers.connect(event)


@app.on_ws_message(name="websocket_message")
def websocket_message(event: Any) -> Any:
    """The page's beats: keep-alive, presence, the viewing heartbeat, a renewed token."""
    from chalicelib.push import handlers

    return handlers.message(event)


@app.on_ws_disconnect(name="websocket_disconnect")
def websocket_disconnect(event: Any) -> Any:
    from chalicelib.push import handlers

    return handlers.disconnect(event)


@app.on_dynamodb_record(stream_arn=config.stream_arn(config.CONVERSATIONS_TABLE), batch_size=100,
                        name="push_fanout")
def push_fanout(event: Any) -> Dict[str, int]:
    """Every conversation change, follow-ups included: one "changed" hint per listening socket,
    scoped to what its agent may see (chalicelib.push.fanout)."""
    tracing.activate()
    from chalicelib.push.fanout import handle_records
    from chalicelib.reports.consumer import record_dicts

    return handle_records(record_dicts(event))


@app.on_dynamodb_record(stream_arn=config.stream_arn(config.MESSAGES_TABLE), batch_size=100,
                        name="reports_messages", maximum_batching_window_in_seconds=60)
def reports_messages(event: Any) -> Dict[str, int]:
    """Reports read the messages table's stream: volume in and out and unique authors, exactly once."""
    tracing.activate()
    from chalicelib.reports.consumer import record_dicts
    from chalicelib.reports.messages import handle_records

    return handle_records(record_dicts(event))


# Everything imported so far lives as long as the container: move it out of the cyclic garbage
# collector's sight, so the full collections that the first request's allocations trigger
# (botocore parses its service models into ~10^5 objects) do not walk the whole app each time.
# Cold first webhook request: ~20 ms less CPU (~8 %; bench/cost_bench.py --only cold). Objects
# created from here on are collected as before.
gc.freeze()

"""socialinbox: Chalice entry point. Routes and event handlers only; the work is in chalicelib."""
from chalice import Chalice

from chalicelib import config
from chalicelib.api.routes import api
from chalicelib.ingest.routes import webhooks
from chalicelib.web.routes import web

app = Chalice(app_name="socialinbox")
app.register_blueprint(webhooks)
app.register_blueprint(api)
app.register_blueprint(web)


@app.on_sqs_message(queue=config.queue_name(config.INGEST_QUEUE), batch_size=10, name="ingest_processor")
def ingest_processor(event):
    """Normalise accepted deliveries into contacts, conversations and messages."""
    from chalicelib.ingest.processor import process_records, record_dicts

    return process_records(record_dicts(event))

#!/usr/bin/env python
"""Listening benchmark (`make bench-listening`): what sentiment and topics cost, and how right they are.

  (a) ingest processor CPU per message WITH the listening annotator (language, VADER, 10 topics)
      as a ratio to WITHOUT it (runtime.use_annotator(False)), measured in one run: the same
      handler, the same kind of deliveries (one Messenger follow-up per envelope, texts from the
      multilingual fixture), arms interleaved in shuffled blocks. DynamoDB is a moto server in a
      separate process, so this process's CPU (time.process_time) is the processor's own work
      plus its botocore requests, as on Lambda. The issue's goal: <= 1.15x.
  (b) cold start: CPU to import the listening modules and score the first English text (VADER
      parses its lexicon) and stem the first word, in a fresh interpreter; Lambda zip effect of
      vadersentiment + snowballstemmer after infra/lean.py's pruning.
  (c) accuracy: the hand-labelled multilingual set (tests/fixtures/listening) and the 4,200 rated
      tweets of VADER's own paper (bench/data/vader_tweets_GroundTruth.txt, from the
      vaderSentiment 3.3.2 sdist, MIT): 3-class accuracy (truth: mean rating >= 0.5 positive,
      <= -0.5 negative, else neutral) and Pearson r of compound against mean/4, with the language
      given (as X says it) and detected (as for Messenger); with detection, unscored tweets are
      counted as coverage, not as errors.

Not a test: nothing here asserts timings. Figures: README "Listening".
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Any, Dict, List

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT)
FIXTURE = os.path.join(PROJECT, "tests", "fixtures", "listening", "sentiment_multilingual.jsonl")
TWEETS = os.path.join(PROJECT, "bench", "data", "vader_tweets_GroundTruth.txt")
PAGE = "bench-page"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(port: int) -> None:
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
                       "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                       "SOCIALINBOX_STAGE": "local", "RESOURCE_PREFIX": "socialinbox-lbench",
                       "AWS_XRAY_SDK_ENABLED": "false", "LOG_LEVEL": "WARNING",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "MOTO_PORT": str(port)})
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"):
        os.environ.pop(name, None)


def _start_moto(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)


def _fixture_rows() -> List[Dict[str, Any]]:
    with open(FIXTURE, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


TOPICS = [
    ("Refunds", ["refund", "money back", "reembolso", "remboursement", "Geld zurück", "rimborso"], ["no refund needed"]),
    ("Delivery", ["delivery", "package", "parcel", "envío", "livraison", "Lieferung", "pedido", "colis"], []),
    ("App", ["app", "update", "crash", "aplicación", "application", "aplicativo"], []),
    ("Billing", ["charged", "invoice", "factura", "facture", "cobrado", "#billing"], []),
    ("Support", ["support", "customer service", "atención", "service client", "Kundenservice"], []),
    ("Praise", ["thank", "love", "gracias", "merci", "danke", "obrigado", "grazie"], []),
    ("Cancel", ["cancel", "subscription", "cancelar", "résilier", "kündigen"], []),
    ("Stores", ["store", "opening hours", "horario", "horaires", "Öffnungszeiten"], []),
    ("Brand", ["@acme", "#acme", "acme"], ["#acmejobs"]),
    ("Quality", ["quality", "broken", "roto", "cassé", "kaputt", "calidad"], []),
]


def bench_processor(rounds: int, block: int, seed: int) -> Dict[str, Any]:
    import app as application

    from chalicelib.accounts import register_account
    from chalicelib.ingest.envelope import Envelope
    from chalicelib.listening import topics
    from chalicelib.local import stack
    from chalicelib.runtime import runtime

    stack.create_all()
    register_account("messenger", PAGE, "Bench page")
    now = runtime.now_ms()
    for name, include, exclude in TOPICS:
        topics.create_topic({"name": name, "include": include, "exclude": exclude}, now)
    texts = [row["text"] for row in _fixture_rows()]
    rng = random.Random(seed)
    senders = [f"psid-{i}" for i in range(40)]
    base = int(time.time() * 1000) - 3_600_000

    def envelope(n: int, sender: str) -> Dict[str, Any]:
        payload = {"object": "page", "entry": [{"id": PAGE, "time": base + n, "messaging": [{
            "sender": {"id": sender}, "recipient": {"id": PAGE}, "timestamp": base + n * 10,
            "message": {"mid": f"m-{n}", "text": texts[n % len(texts)]}}]}]}
        body = Envelope("meta", payload, base, f"c{n}").to_json()
        return {"Records": [{"messageId": f"id-{n}", "receiptHandle": "", "body": body,
                             "attributes": {"ApproximateReceiveCount": "1"}}]}

    counter = 0
    for sender in senders:  # open every conversation first: timed messages are follow-ups
        application.ingest_processor(envelope(counter, sender), None)
        counter += 1
    samples: Dict[str, List[float]] = {"with": [], "without": []}
    arms = ["with", "without"] * (rounds // (2 * block) + 1)
    warm = 2 * block
    for index, arm in enumerate(arms + ["with", "without"]):
        rng.shuffle(senders)
        runtime.use_annotator(None if arm == "with" else False)
        for i in range(block):
            event = envelope(counter, senders[i % len(senders)])
            counter += 1
            start = time.process_time()
            outcome = application.ingest_processor(event, None)
            spent = time.process_time() - start
            if outcome.get("created") != 1:
                raise RuntimeError(f"processor said {outcome}")
            if index >= 2:  # the first two blocks warm both arms (VADER's lexicon, stems, topics)
                samples[arm].append(spent)
        if index >= 2 and len(samples["with"]) >= rounds // 2 and len(samples["without"]) >= rounds // 2:
            break
    runtime.use_annotator(None)
    with_median, without_median = statistics.median(samples["with"]), statistics.median(samples["without"])
    with_mean, without_mean = statistics.mean(samples["with"]), statistics.mean(samples["without"])
    return {"messages_per_arm": len(samples["with"]), "topics": len(TOPICS),
            "cpu_ms_with_median": round(with_median * 1000, 3), "cpu_ms_without_median": round(without_median * 1000, 3),
            "ratio_median": round(with_median / without_median, 3), "ratio_mean": round(with_mean / without_mean, 3),
            "warmup_messages": warm}


COLD = """
import resource, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
t0 = cpu()
from chalicelib.listening import annotate, sentiment, text
t1 = cpu()
sentiment.score("I love it", "en")
t2 = cpu()
text.stem("reembolsos", "es")
t3 = cpu()
print(round((t1 - t0) * 1000, 1), round((t2 - t1) * 1000, 1), round((t3 - t2) * 1000, 1))
"""


def bench_cold() -> Dict[str, Any]:
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", COLD], cwd=PROJECT, capture_output=True, text=True, check=True,
                             env=dict(os.environ, SOCIALINBOX_STAGE="local"))
        runs.append([float(v) for v in out.stdout.split()])
    imports, vader, stemmer = (statistics.median(r[i] for r in runs) for i in range(3))
    return {"import_listening_ms_cpu": imports, "first_english_score_ms_cpu": vader, "first_stem_ms_cpu": stemmer}


def bench_zip() -> Dict[str, Any]:
    import importlib.util

    from infra import lean

    found: Dict[str, Any] = {}
    work = tempfile.mkdtemp(prefix="listening-zip-")
    try:
        for package in ("vaderSentiment", "snowballstemmer"):
            spec = importlib.util.find_spec(package)
            build = os.path.join(work, package)
            shutil.copytree(os.path.dirname(spec.origin), os.path.join(build, "vendor", package),
                            ignore=shutil.ignore_patterns("__pycache__"))
            lean.prune(build)
            archive = os.path.join(work, package + ".zip")
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
                for root, _dirs, files in os.walk(os.path.join(build, "vendor")):
                    for name in files:
                        path = os.path.join(root, name)
                        zipped.write(path, os.path.relpath(path, build))
            found[package] = {"unzipped_kb": round(lean._size(os.path.join(build, "vendor")) / 1024),
                              "zipped_kb": round(os.path.getsize(archive) / 1024)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return found


def _pearson(xs: List[float], ys: List[float]) -> float:
    mx, my = statistics.mean(xs), statistics.mean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    den = (sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5
    return num / den


def bench_accuracy() -> Dict[str, Any]:
    from chalicelib.listening import language, sentiment
    from chalicelib.listening.evaluate import evaluate

    results: Dict[str, Any] = {"multilingual_fixture": evaluate(_fixture_rows())}
    tweets = []
    with open(TWEETS, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) >= 3:
                mean = float(parts[1])
                truth = "positive" if mean >= 0.5 else "negative" if mean <= -0.5 else "neutral"
                tweets.append((parts[2], mean, truth))
    given = [sentiment.score(text, "en") for text, _, _ in tweets]
    detected_language = [language.detect(text) for text, _, _ in tweets]
    detected = [sentiment.score(text, lang) for (text, _, _), lang in zip(tweets, detected_language)]
    scored = [(call, truth) for call, (_, _, truth) in zip(detected, tweets) if call["label"] != "unscored"]
    results["vader_tweets"] = {
        "tweets": len(tweets),
        "language_given_accuracy": round(sum(c["label"] == t for c, (_, _, t) in zip(given, tweets)) / len(tweets), 3),
        "language_given_pearson_r": round(_pearson([c["score"] for c in given], [m / 4 for _, m, _ in tweets]), 3),
        "detected_coverage": round(len(scored) / len(tweets), 3),
        "detected_as_english": round(sum(lang == "en" for lang in detected_language) / len(tweets), 3),
        "detected_accuracy_on_scored": round(sum(c["label"] == t for c, t in scored) / max(1, len(scored)), 3),
    }
    return results


def main(argv: List[str] = None) -> int:  # type: ignore[assignment]
    parser = argparse.ArgumentParser(prog="bench/listening_bench.py")
    parser.add_argument("--messages", type=int, default=600, help="timed messages (half per arm)")
    parser.add_argument("--block", type=int, default=25, help="messages per block of one arm")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    port = _free_port()
    _environment(port)
    moto = _start_moto(port)
    try:
        figures = {"processor": bench_processor(args.messages, args.block, args.seed)}
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    figures["cold_start"] = bench_cold()
    figures["lambda_zip"] = bench_zip()
    figures["accuracy"] = bench_accuracy()
    p = figures["processor"]
    print(f"(a) processor CPU per message: {p['cpu_ms_with_median']} ms with listening, "
          f"{p['cpu_ms_without_median']} ms without ({p['messages_per_arm']} messages per arm, {p['topics']} topics): "
          f"ratio {p['ratio_median']}x median, {p['ratio_mean']}x mean (goal <= 1.15x)")
    c = figures["cold_start"]
    print(f"(b) cold: import listening {c['import_listening_ms_cpu']} ms CPU, first English score (VADER lexicon) "
          f"{c['first_english_score_ms_cpu']} ms, first stem {c['first_stem_ms_cpu']} ms; zip: "
          + ", ".join(f"{k} {v['zipped_kb']} KB zipped / {v['unzipped_kb']} KB" for k, v in figures["lambda_zip"].items()))
    m, t = figures["accuracy"]["multilingual_fixture"], figures["accuracy"]["vader_tweets"]
    print(f"(c) hand-labelled multilingual set ({m['rows']} rows): scored accuracy {m['scored_accuracy']} on "
          f"{m['scored_rows']} rows, negative precision {m['negative_precision']} recall {m['negative_recall']}, "
          f"other languages unscored {m['unscored_share_other']}, language accuracy {m['language_accuracy']} "
          f"({m['language_unknown']} unknown, {m['language_wrong']} wrong)")
    print(f"    VADER's rated tweets ({t['tweets']}): language given: accuracy {t['language_given_accuracy']}, "
          f"Pearson r {t['language_given_pearson_r']}; language detected: {t['detected_as_english']} detected as "
          f"English, coverage {t['detected_coverage']}, accuracy on scored {t['detected_accuracy_on_scored']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The design the service replaces, measured beside it: a Celery chain and chord doing a job's work.

A client writes the job and its outputs' rows to Postgres and sends
chain(generate, chord([persist] * n, finish)); `generate` marks the job started, each `persist`
renders its 256x256 PNG (Pillow), uploads it to S3 (boto3) and records it, and `finish` marks the
job completed. The client polls the job's row every 100 ms until then. Broker and result backend
are Redis; the worker is a prefork pool.

    celery_design.py worker   the worker (its pool size from BENCH_CELERY)
    celery_design.py run      closed-loop clients; prints one JSON line with what they measured

Run by bench/designs/celery.ts with BENCH_CELERY set; not meant to be run by hand.
"""

import hashlib
import io
import json
import math
import os
import sys
import threading
import time
import uuid

import boto3
import psycopg2
from botocore.config import Config
from celery import Celery, chain, chord
from celery.signals import worker_ready
from PIL import Image, ImageDraw

SETTINGS = json.loads(os.environ["BENCH_CELERY"])
SCHEMA = "bench_designs"
POLL_INTERVAL_S = 0.1
IMAGE_SIZE = 256

app = Celery("designs", broker=SETTINGS["redisUrl"], backend=SETTINGS["redisUrl"])
app.conf.update(
    task_default_queue=SETTINGS["queue"],
    result_expires=300,
    worker_hijack_root_logger=False,
    # The worker's `ready` line must reach its stdout, where bench/designs/child.ts waits for it.
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
)

_local = threading.local()


def database():
    """One connection per worker process (or client thread), opened on first use."""
    if getattr(_local, "db", None) is None:
        _local.db = psycopg2.connect(SETTINGS["databaseUrl"])
        _local.db.autocommit = True
    return _local.db


def storage():
    if getattr(_local, "s3", None) is None:
        s3 = SETTINGS["s3"]
        _local.s3 = boto3.client(
            "s3",
            endpoint_url=s3["endpoint"],
            region_name=s3["region"],
            aws_access_key_id=s3["accessKeyId"],
            aws_secret_access_key=s3["secretAccessKey"],
            config=Config(s3={"addressing_style": "path" if s3["forcePathStyle"] else "auto"}),
        )
    return _local.s3


def execute(sql, params):
    with database().cursor() as cursor:
        cursor.execute(sql, params)


RETRIES = dict(autoretry_for=(Exception,), retry_backoff=0.2, max_retries=5)


@app.task(**RETRIES)
def generate(job_id):
    execute(f"update {SCHEMA}.jobs set status = 'PROCESSING', started_at = now() where id = %s", (job_id,))


@app.task(**RETRIES)
def persist(job_id, index, prompt, seed):
    body = render_image(prompt, seed, index)
    storage().put_object(
        Bucket=SETTINGS["s3"]["bucket"], Key=f"designs/{job_id}/{index}.png", Body=body, ContentType="image/png"
    )
    execute(
        f"update {SCHEMA}.media set status = 'COMPLETED', size_bytes = %s, sha256 = %s"
        " where job_id = %s and output_index = %s",
        (len(body), hashlib.sha256(body).hexdigest(), job_id, index),
    )


@app.task(**RETRIES)
def finish(job_id):
    execute(f"update {SCHEMA}.jobs set status = 'COMPLETED', completed_at = now() where id = %s", (job_id,))


def render_image(prompt, seed, index):
    """The fake provider's picture: a two-colour diagonal field with four discs, from a hash."""
    digest = hashlib.sha256(f"{prompt}\0{seed}\0{index}".encode()).digest()
    byte = lambda i: digest[i % len(digest)]
    start, end = (byte(0), byte(1), byte(2)), (byte(3), byte(4), byte(5))
    diagonals = bytearray()
    for total in range(2 * IMAGE_SIZE):
        t = total / (2 * IMAGE_SIZE)
        diagonals += bytes(round(a * (1 - t) + b * t) for a, b in zip(start, end))
    rows = b"".join(diagonals[y * 3 : (y + IMAGE_SIZE) * 3] for y in range(IMAGE_SIZE))
    image = Image.frombytes("RGB", (IMAGE_SIZE, IMAGE_SIZE), rows)
    draw = ImageDraw.Draw(image)
    for d in range(4):
        x, y, radius = byte(6 + d * 4), byte(7 + d * 4), 12 + byte(8 + d * 4) % 48
        colour = (byte(9 + d * 4), byte(10 + d * 4), byte(11 + d * 4))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def submit(sequence, outputs):
    job_id = str(uuid.uuid4())
    execute(
        f"with job as (insert into {SCHEMA}.jobs (id, status, num_outputs) values (%s, 'PENDING', %s) returning id)"
        f" insert into {SCHEMA}.media (job_id, output_index, status, s3_key)"
        " select job.id, index, 'PENDING', 'designs/' || job.id || '/' || index || '.png'"
        " from job, generate_series(0, %s - 1) as index",
        (job_id, outputs, outputs),
    )
    prompt = SETTINGS["prompt"]
    chain(
        generate.si(job_id),
        chord([persist.si(job_id, index, prompt, sequence) for index in range(outputs)], finish.si(job_id)),
    ).apply_async()
    return job_id


def wait_for(job_id, give_up_at):
    while time.monotonic() < give_up_at:
        time.sleep(POLL_INTERVAL_S)
        with database().cursor() as cursor:
            cursor.execute(f"select status from {SCHEMA}.jobs where id = %s", (job_id,))
            row = cursor.fetchone()
        if row and row[0] == "COMPLETED":
            return True
    return False


def closed_loop(clients, outputs, duration_s, max_jobs, drain_s):
    """The bench's closed loop (bench/load.ts runClosedLoop): jobs/s over the window after its first fifth."""
    lock = threading.Lock()
    state = {"submitted": 0, "unfinished": 0, "failed": 0, "errors": {}}
    latencies, completions = [], []
    start = time.monotonic()
    deadline = start + duration_s
    give_up_at = deadline + drain_s

    def client():
        while time.monotonic() < deadline:
            with lock:
                if state["submitted"] >= max_jobs:
                    return
                sequence = state["submitted"]
                state["submitted"] += 1
            began = time.monotonic()
            try:
                done = wait_for(submit(sequence, outputs), give_up_at)
            except Exception as error:  # noqa: BLE001 - counted and reported, as the bench's loop does
                with lock:
                    state["failed"] += 1
                    state["errors"][str(error)[:200]] = state["errors"].get(str(error)[:200], 0) + 1
                time.sleep(POLL_INTERVAL_S)
                continue
            ended = time.monotonic()
            with lock:
                if done:
                    latencies.append((ended - began) * 1000)
                    completions.append(ended - start)
                else:
                    state["unfinished"] += 1

    cpu_before = time.process_time()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # This process ends before the bench reads /proc again: it reports its own CPU.
    client_cpu_ms = (time.process_time() - cpu_before) * 1000
    warmup = duration_s * 0.2
    window = [t for t in completions if warmup <= t <= duration_s]
    if len(window) >= min(clients, 4):
        jobs_per_s = len(window) / (duration_s - warmup)
    else:
        jobs_per_s = len(completions) / max(completions) if completions else 0
    latencies.sort()
    return {
        "jobsPerS": round(jobs_per_s, 2),
        "submitted": state["submitted"],
        "completed": len(latencies),
        "failed": state["failed"],
        "unfinished": state["unfinished"],
        "latency": {"count": len(latencies), "p50Ms": percentile(latencies, 0.5), "p99Ms": percentile(latencies, 0.99)},
        "errors": [f"{count}x {message}" for message, count in state["errors"].items()],
        "clientCpuMs": round(client_cpu_ms, 1),
    }


def percentile(sorted_ms, q):
    """Nearest rank, as bench/stats.ts computes it."""
    if not sorted_ms:
        return None
    rank = math.ceil(q * len(sorted_ms))
    return round(sorted_ms[min(len(sorted_ms) - 1, max(0, rank - 1))], 1)


@worker_ready.connect
def announce(**_):
    print("ready", flush=True)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "worker":
        app.worker_main(
            [
                "worker",
                "--pool=prefork",
                f"--concurrency={SETTINGS['poolSize']}",
                f"--queues={SETTINGS['queue']}",
                "--loglevel=WARNING",
                # The usual settings of a busy Redis-backed deployment: no chatter between workers.
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    elif command == "run":
        run = SETTINGS["run"]
        print(json.dumps(closed_loop(run["clients"], run["outputs"], run["durationS"], run["maxJobs"], run["drainS"])))
    else:
        sys.exit("usage: celery_design.py worker|run")


if __name__ == "__main__":
    main()

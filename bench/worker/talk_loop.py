"""The baseline of bench/worker: the talk's queue loop, fixed (model loaded once, one bad
message cannot kill it), and nothing more: receive one, predict one, write its result, delete
one. Writes the same result objects as mlship's worker, so both are counted the same way.

    python talk_loop.py MODEL_PATH   (QUEUE_URL, S3_BUCKET, AWS_ENDPOINT_URL_SQS, S3_ENDPOINT_URL)
"""

import json
import os
import signal
import sys

import boto3
import joblib
import numpy as np

model = joblib.load(sys.argv[1])
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"])
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"])
queue, bucket = os.environ["QUEUE_URL"], os.environ["S3_BUCKET"]
running = True
signal.signal(signal.SIGTERM, lambda *_: globals().update(running=False))

while running:
    answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    for message in answer.get("Messages", []):
        try:
            body = json.loads(message["Body"])
            output = model.predict(np.asarray([body["input"]["features"]])).tolist()[0]
            key = f"jobs/{body['job']}/results/{body['item']}.json"
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"output": output}).encode())
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        except Exception as error:  # noqa: BLE001 - the fixed loop survives a bad message
            print(f"failed: {type(error).__name__}", file=sys.stderr)

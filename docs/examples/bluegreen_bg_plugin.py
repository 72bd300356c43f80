"""A minimal reproducer: the AWS Advanced Python Wrapper's `bg` plugin through a Blue/Green switchover.

Run it in the fiswatch lab (no AWS account), where the lab's names resolve and the switchover comes
on schedule (docs/lesson.md, chapter 10):

    fiswatch lab up --blue-green
    REPRO_CREDS=$(fiswatch lab status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["credentials_file"])') \
        fiswatch lab exec --switchover aurora@10 -- python docs/examples/bluegreen_bg_plugin.py

It writes every 0.1 s by the cluster name and prints each call that took over a second, or failed.
"""
import json
import os
import time

import mysql.connector
from aws_advanced_python_wrapper import AwsWrapperConnection

creds = json.load(open(os.environ["REPRO_CREDS"]))["aurora"]
conn = AwsWrapperConnection.connect(
    mysql.connector.connect, host=creds["host"], port=3306, user=creds["username"], password=creds["password"],
    database=creds["dbname"], autocommit=True, plugins="bg,failover_v2", wrapper_dialect="aurora-mysql",
    cluster_instance_host_pattern="?.c0ffee0c0ffe.lab-1.rds.amazonaws.com", bg_interval_baseline_ms=1000,
    connect_timeout=2, socket_timeout=2, use_pure=True)
t_start = time.time()
end = t_start + float(os.environ.get("REPRO_SECONDS", "45"))
while time.time() < end:
    t = time.time()
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO test (value) VALUES (1)")
        cur.execute("SELECT @@server_id")
        server_id = cur.fetchone()[0]
        if time.time() - t > 1:
            print("t+%.1f INSERT took %.1fs, now on server_id %s" % (t - t_start, time.time() - t, server_id), flush=True)
    except Exception as exc:  # noqa: BLE001 - the point is to print what the application sees
        print("t+%.1f %s after %.1fs: %s" % (t - t_start, type(exc).__name__, time.time() - t, exc), flush=True)
    time.sleep(0.1)

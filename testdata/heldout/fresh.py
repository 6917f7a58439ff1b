#!/usr/bin/env python3
"""Writes fresh.jsonl: a second, smaller held-out set written after the detector's fixes and
never used to change it (a check that the fixes generalise). Same labels as lines.jsonl."""
import json, os
R = [
 ("jenkins", "2026-11-30 10:42:00.123+0000 [id=42]\tINFO\thudson.WebAppMain$3#run: Jenkins is fully up and running", "2026-11-30T10:42:00.123Z", "info"),
 ("jenkins", "2026-11-30 10:42:01.456+0000 [id=77]\tWARNING\tj.s.DefaultJnlpSlaveReceiver#channelClosed: Computer.threadPoolForRemoting [#4] for agent-1 terminated", "2026-11-30T10:42:01.456Z", "warning"),
 ("nextcloud", "{\"reqId\":\"a1\",\"level\":2,\"time\":\"2026-11-30T10:42:02+00:00\",\"app\":\"core\",\"message\":\"Login failed\"}", "2026-11-30T10:42:02Z", "warning"),
 ("consul-old", "2026/11/30 10:42:03 [INFO] agent: Synced node info", "2026-11-30T10:42:03Z", "info"),
 ("consul-old", "2026/11/30 10:42:04 [ERR] agent: failed to sync remote state: No cluster leader", "2026-11-30T10:42:04Z", "error"),
 ("hclog-json", "{\"@level\":\"warn\",\"@message\":\"no tls\",\"@module\":\"core\",\"@timestamp\":\"2026-11-30T10:42:05.123456Z\"}", "2026-11-30T10:42:05.123456Z", "warning"),
 ("airflow", "[2026-11-30T10:42:06.123+0000] {scheduler_job_runner.py:798} INFO - Starting the scheduler", "2026-11-30T10:42:06.123Z", "info"),
 ("airflow", "[2026-11-30T10:42:07.000+0000] {taskinstance.py:1937} ERROR - Task failed with exception", "2026-11-30T10:42:07.000Z", "error"),
 ("celery", "[2026-11-30 10:42:08,123: WARNING/MainProcess] consumer: Connection to broker lost", "2026-11-30T10:42:08.123Z", "warning"),
 ("celery", "[2026-11-30 10:42:09,500: INFO/ForkPoolWorker-1] Task app.add[ab12] succeeded in 0.01s: 3", "2026-11-30T10:42:09.500Z", "info"),
 ("tomcat", "30-Nov-2026 10:42:10.123 INFO [main] org.apache.catalina.startup.Catalina.start Server startup in [1234] milliseconds", "2026-11-30T10:42:10.123Z", "info"),
 ("tomcat", "30-Nov-2026 10:42:11.000 SEVERE [main] org.apache.catalina.core.StandardContext.startInternal One or more listeners failed to start", "2026-11-30T10:42:11.000Z", "error"),
 ("jul", "SEVERE: Servlet.service() for servlet [jsp] threw exception", None, "error"),
 ("php-fpm", "[30-Nov-2026 10:42:12] WARNING: [pool www] child 12 exited on signal 9 (SIGKILL) after 20.5 seconds from start", "2026-11-30T10:42:12Z", "warning"),
 ("php-fpm", "[30-Nov-2026 10:42:13] NOTICE: fpm is running, pid 1", "2026-11-30T10:42:13Z", "notice"),
 ("squid", "1796035334.123     45 10.0.0.1 TCP_MISS/200 1234 GET http://example.com/ - HIER_DIRECT/93.184.216.34 text/html", "2026-11-30T10:42:14.123Z", None),
 ("etcd-capnslog", "2026-11-30 10:42:15.123456 I | etcdserver: published {Name:infra0} to cluster 1", "2026-11-30T10:42:15.123456Z", "info"),
 ("etcd-capnslog", "2026-11-30 10:42:16.000001 W | rafthttp: health check for peer 2 could not connect", "2026-11-30T10:42:16.000001Z", "warning"),
 ("grafana", "logger=server t=2026-11-30T10:42:17.123+00:00 level=info msg=\"HTTP Server Listen\" address=[::]:3000", "2026-11-30T10:42:17.123Z", "info"),
 ("sidekiq", "2026-11-30T10:42:18.123Z pid=12 tid=2a INFO: Booting Sidekiq 7.2.0", "2026-11-30T10:42:18.123Z", "info"),
 ("laravel", "[2026-11-30 10:42:19] production.ERROR: SQLSTATE[HY000] [2002] Connection refused", "2026-11-30T10:42:19Z", "error"),
 ("monolog", "[2026-11-30T10:42:20.123456+00:00] app.WARNING: Deprecated call {\"x\":1} []", "2026-11-30T10:42:20.123456Z", "warning"),
 ("cockroach", "I261130 10:42:21.123456 1 server/server.go:1423 [n1] 1 node startup completed", "2026-11-30T10:42:21.123456Z", "info"),
 ("uwsgi", "*** Starting uWSGI 2.0.23 (64bit) on [Mon Nov 30 10:42:22 2026] ***", "2026-11-30T10:42:22Z", None),
 ("no-level", "2026-11-30 10:42:23 processed batch; Warning count=0", "2026-11-30T10:42:23Z", None),
 ("no-level", "2026-11-30T10:42:24Z GET /api/errors 200 12ms", "2026-11-30T10:42:24Z", None),
 ("no-level", "2026-11-30 10:42:25 cache: 3 entries, 0 errors, fatal=false", "2026-11-30T10:42:25Z", None),
 ("nginx-ingress", "10.0.0.1 - - [30/Nov/2026:10:42:26 +0000] \"GET /healthz HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.28\" 120 0.001 [default-web-80] [] 10.1.0.5:80 2 0.001 200 abc", "2026-11-30T10:42:26Z", None),
 ("glog-python", "I1130 10:42:27.000000 140234 main.py:12] absl started", "2026-11-30T10:42:27Z", "info"),
 ("dotnet-json", "{\"EventId\":0,\"LogLevel\":\"Warning\",\"Category\":\"App\",\"Message\":\"slow\",\"Timestamp\":\"2026-11-30T10:42:28.123Z\"}", "2026-11-30T10:42:28.123Z", "warning"),
]
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "fresh.jsonl"), "w", encoding="utf-8", newline="\n") as f:
    for fmt, line, ts, level in R:
        f.write(json.dumps({"format": fmt, "line": line, "ts": ts, "level": level}, ensure_ascii=False, separators=(",", ":")) + "\n")
print(len(R))

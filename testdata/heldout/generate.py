#!/usr/bin/env python3
"""Writes testdata/heldout/lines.jsonl: held-out lines of formats not in testdata/corpus.

Each format is a renderer (time, level token, message -> line) and a list of entries
(level token, LogFlux level label or None, message). Times step from 2026-11-30T10:42:00Z.
Lines that are written by hand (no time or a special shape) use `fixed`.
Python 3 standard library only; running it again writes the same bytes.
"""
import datetime as dt
import json
import os

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 30, 10, 42, 0, tzinfo=UTC)
MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DOW = "Mon Tue Wed Thu Fri Sat Sun".split()
OUT = []


def rfc(t, digits):
    """The label: RFC 3339 UTC with the fractional digits the line carries."""
    t = t.astimezone(UTC)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        s += "." + f"{t.microsecond:06d}"[:digits]
    return s + "Z"


def frac(t, n):
    return f"{t.microsecond:06d}"[:n]


def emit(fmt, line, ts, level):
    OUT.append({"format": fmt, "line": line, "ts": ts, "level": level})


def fmt_lines(fmt, render, digits, entries, step=37):
    """render(t, token, msg) -> line; the label time is t with `digits` fractional digits."""
    for i, (tok, level, msg) in enumerate(entries):
        t = T0 + dt.timedelta(seconds=i * step, microseconds=(i * 123457 + 4321) % 1000000)
        line = render(t, tok, msg)
        emit(fmt, line, rfc(t, digits) if digits is not None else None, level)


def fixed(fmt, rows):
    for line, ts, level in rows:
        emit(fmt, line, ts, level)


def ymd(t):
    return t.strftime("%Y-%m-%d %H:%M:%S")


# --- Java -----------------------------------------------------------------------------
fmt_lines("log4j2", lambda t, k, m: f"{ymd(t)},{frac(t,3)} [{m[0]}] {k} {m[1]}", 3, [
    ("INFO ", "info", ("main", "com.example.App - Starting application v1.4.2")),
    ("DEBUG", "debug", ("main", "org.apache.logging.log4j.core.config.ConfigurationFactory - Loading config")),
    ("WARN ", "warning", ("pool-1-thread-3", "com.example.cache.Loader - Cache miss ratio 0.42 above threshold")),
    ("ERROR", "error", ("pool-1-thread-3", "com.example.cache.Loader - Failed to refresh entry user:42")),
    ("FATAL", "critical", ("main", "com.example.App - Unrecoverable error, shutting down")),
    ("TRACE", "debug", ("worker-7", "com.example.io.Reader - read 512 bytes")),
    ("INFO ", "info", ("Thread-12", "com.example.App - handled 1 error in batch 7")),
    ("INFO ", "info", ("main", "com.example.App - peer replied [ERROR] but retry succeeded")),
])
# log4j2's default pattern: %d{HH:mm:ss.SSS} [%t] %-5level %logger{36} - %msg — a time without a date.
fixed("log4j2", [
    ("10:42:05.120 [main] ERROR com.example.App - Connection refused", "2026-11-30T10:42:05.120Z", "error"),
    ("10:42:06.004 [main] INFO  com.example.App - Started in 2.1 s", "2026-11-30T10:42:06.004Z", "info"),
    ("10:42:07.777 [Timer-0] WARN  com.example.Job - Job late by 3000 ms", "2026-11-30T10:42:07.777Z", "warning"),
    ("23:59:58.001 [main] INFO  com.example.App - nightly rollover", "2026-11-29T23:59:58.001Z", "info"),
])

fmt_lines("logback", lambda t, k, m: f"{ymd(t)}.{frac(t,3)} [{m[0]}] {k} {m[1]}", 3, [
    ("ERROR", "error", ("http-nio-8080-exec-1", "c.e.Foo - Request processing failed")),
    ("INFO ", "info", ("http-nio-8080-exec-2", "c.e.web.Controller - GET /api/users 200")),
    ("WARN ", "warning", ("scheduling-1", "o.h.e.j.s.SqlExceptionHelper - SQL Warning Code: 0, SQLState: 00000")),
    ("DEBUG", "debug", ("main", "o.s.b.a.l.ConditionEvaluationReportLoggingListener - report")),
    ("INFO ", "info", ("main", "c.e.Application - No active profile set, falling back to default")),
    ("ERROR", "error", ("http-nio-8080-exec-9", "o.a.c.c.C.[.[.[/].[dispatcherServlet] - Servlet.service() threw exception")),
    ("TRACE", "debug", ("main", "o.s.c.e.PropertySourcesPropertyResolver - Searching for key 'server.port'")),
    ("INFO ", "info", ("HikariPool-1 housekeeper", "com.zaxxer.hikari.pool.HikariPool - HikariPool-1 - Fill pool skipped")),
])

# Spring Boot 3.2+ console pattern (ISO time with zone) and the older one (space, no zone).
for i, (tmpl, level) in enumerate([
    ("{t}Z  INFO 12345 --- [demo] [           main] c.e.demo.DemoApplication                 : Started DemoApplication in 2.345 seconds", "info"),
    ("{t}Z  WARN 12345 --- [demo] [           main] o.s.b.a.o.j.JpaBaseConfiguration         : spring.jpa.open-in-view is enabled by default", "warning"),
    ("{t}Z ERROR 12345 --- [demo] [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() threw exception", "error"),
    ("{t}Z DEBUG 12345 --- [demo] [           main] o.s.w.s.DispatcherServlet                : enableLoggingRequestDetails='false'", "debug"),
    ("{t}Z  INFO 12345 --- [demo] [           main] o.s.b.w.embedded.tomcat.TomcatWebServer  : Tomcat initialized with port 8080 (http)", "info"),
    ("{s}  INFO 12345 --- [           main] o.apache.catalina.core.StandardService   : Starting service [Tomcat]", "info"),
    ("{s} TRACE 12345 --- [           main] o.s.b.c.c.ConfigDataEnvironment          : Processing imports", "debug"),
    ("{s} ERROR 12345 --- [    scheduler-1] c.e.demo.Job                             : Job failed: timeout after 30s", "error"),
    ("{s}  WARN 12345 --- [    scheduler-1] c.e.demo.Job                             : retry 2 of 3 after error", "warning"),
]):
    t = T0 + dt.timedelta(seconds=i * 41, microseconds=i * 111000)
    line = tmpl.format(t=t.strftime("%Y-%m-%dT%H:%M:%S.") + frac(t, 3), s=ymd(t) + "." + frac(t, 3))
    emit("spring-boot", line, rfc(t, 3), level)

fmt_lines("kafka", lambda t, k, m: f"[{ymd(t)},{frac(t,3)}] {k} {m}", 3, [
    ("INFO", "info", "[KafkaServer id=1] started (kafka.server.KafkaServer)"),
    ("WARN", "warning", "[Controller id=1, targetBrokerId=2] Connection to node 2 (broker2/10.0.0.2:9092) could not be established. (org.apache.kafka.clients.NetworkClient)"),
    ("ERROR", "error", "[ReplicaFetcher replicaId=1, leaderId=2, fetcherId=0] Error for partition orders-3 at offset 1200 (kafka.server.ReplicaFetcherThread)"),
    ("DEBUG", "debug", "[GroupCoordinator 1]: Member consumer-1 in group g1 has left (kafka.coordinator.group.GroupCoordinator)"),
    ("INFO", "info", "[LogLoader partition=orders-0, dir=/var/lib/kafka] Loading producer state till offset 0 (kafka.log.UnifiedLog$)"),
    ("TRACE", "debug", "[Broker id=1] Cached leader info for partition orders-1 (state.change.logger)"),
    ("INFO", "info", "Session establishment complete on server zk1/10.0.0.5:2181, session id = 0x100 (org.apache.zookeeper.ClientCnxn)"),
    ("FATAL", "critical", "[KafkaServer id=1] Fatal error during KafkaServer startup. Prepare to shutdown (kafka.server.KafkaServer)"),
])

fmt_lines("zookeeper-3.5", lambda t, k, m: f"{ymd(t)},{frac(t,3)} [myid:{m[0]}] - {k} [{m[1]}] - {m[2]}", 3, [
    ("INFO ", "info", ("1", "main:QuorumPeerConfig@174", "Reading configuration from: /conf/zoo.cfg")),
    ("WARN ", "warning", ("1", "QuorumConnectionThread-[myid=1]-2:QuorumCnxManager@381", "Cannot open channel to 2 at election address zk2/10.0.0.6:3888")),
    ("ERROR", "error", ("", "main:ZooKeeperServerMain@86", "Unable to start AdminServer, exiting abnormally")),
    ("INFO ", "info", ("2", "QuorumPeer[myid=2](plain=0.0.0.0:2181)(secure=disabled):Leader@1296", "Have quorum of supporters, sids: [[1, 2]]")),
    ("DEBUG", "debug", ("2", "SyncThread:2:FinalRequestProcessor@89", "Processing request")),
    ("INFO ", "info", ("1", "NIOWorkerThread-3:NIOServerCnxn@625", "Closed socket connection for client with error count 0")),
    ("WARN ", "warning", ("1", "NIOWorkerThread-1:NIOServerCnxn@373", "Close of session 0x100 java.io.IOException: ZooKeeperServer not running")),
    ("INFO ", "info", ("3", "main:Environment@98", "Server environment:java.version=17.0.9")),
])

fmt_lines("elasticsearch", lambda t, k, m: f"[{t.strftime('%Y-%m-%dT%H:%M:%S')},{frac(t,3)}][{k}][{m[0]}] [{m[1]}] {m[2]}", 3, [
    ("WARN ", "warning", ("o.e.c.r.a.DiskThresholdMonitor", "es-node-1", "high disk watermark [90%] exceeded on [abc][es-node-1] free: 4.1gb[8.2%]")),
    ("INFO ", "info", ("o.e.n.Node", "es-node-1", "started {es-node-1}{abc}{10.0.0.7}")),
    ("ERROR", "error", ("o.e.b.ElasticsearchUncaughtExceptionHandler", "es-node-1", "fatal error in thread [main], exiting")),
    ("DEBUG", "debug", ("o.e.a.s.TransportSearchAction", "es-node-2", "[logs-2026.11.30][0] failed to execute query phase")),
    ("INFO ", "info", ("o.e.c.m.MetadataCreateIndexService", "es-node-1", "[logs-2026.11.30] creating index, cause [auto(bulk api)]")),
    ("WARN ", "warning", ("o.e.d.HandshakingTransportAddressConnector", "es-node-2", "[connectToRemoteMasterNode[10.0.0.8:9300]] completed handshake with error")),
    ("TRACE", "debug", ("o.e.i.s.IndexShard", "es-node-2", "[logs][1] recovery done")),
    ("INFO ", "info", ("o.e.c.r.a.AllocationService", "es-node-1", "Cluster health status changed from [YELLOW] to [GREEN]")),
])

fmt_lines("cassandra", lambda t, k, m: f"{k} [{m[0]}] {ymd(t)},{frac(t,3)} {m[1]}", 3, [
    ("INFO ", "info", ("main", "CassandraDaemon.java:507 - JVM vendor/version: OpenJDK 64-Bit Server VM/11.0.21")),
    ("WARN ", "warning", ("main", "StartupChecks.java:143 - jemalloc shared library could not be preloaded")),
    ("ERROR", "error", ("CompactionExecutor:3", "CassandraDaemon.java:581 - Exception in thread Thread[CompactionExecutor:3,1,main]")),
    ("INFO ", "info", ("ScheduledTasks:1", "StatusLogger.java:65 - Pool Name Active Pending")),
    ("DEBUG", "debug", ("MemtableFlushWriter:1", "Memtable.java:456 - Writing Memtable-local@1 (0.5KiB serialized bytes)")),
    ("WARN ", "warning", ("GossipTasks:1", "FailureDetector.java:288 - Not marking nodes down due to local pause of 5312 > 5000")),
    ("INFO ", "info", ("HANDSHAKE-/10.0.0.9", "OutboundTcpConnection.java:561 - Handshaking version with /10.0.0.9")),
    ("ERROR", "error", ("Native-Transport-Requests-1", "QueryMessage.java:129 - Unexpected error during query")),
])

fixed("java-stacktrace", [
    ("java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"s\" is null", None, None),
    ("\tat com.example.App.parse(App.java:42)", None, None),
    ("\tat com.example.App.main(App.java:17)", None, None),
    ("Caused by: java.lang.IllegalStateException: ERROR state reached", None, None),
    ("\tat org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)", None, None),
    ("\t... 42 more", None, None),
    ("Exception in thread \"main\" java.lang.RuntimeException: fatal error in worker", None, None),
    ("\tSuppressed: java.io.IOException: Stream closed", None, None),
    ("Caused by: org.postgresql.util.PSQLException: ERROR: relation \"users\" does not exist", None, None),
    ("  Position: 15", None, None),
])

# --- Python ---------------------------------------------------------------------------------
fixed("python-logging", [
    ("ERROR:root:Something went wrong", None, "error"),
    ("WARNING:urllib3.connectionpool:Retrying (Retry(total=2)) after connection broken", None, "warning"),
    ("INFO:__main__:Starting worker 3", None, "info"),
    ("DEBUG:asyncio:Using selector: EpollSelector", None, "debug"),
    ("CRITICAL:root:Disk full, cannot write checkpoint", None, "critical"),
    ("2026-11-30 10:42:00,123 - myapp.db - WARNING - Slow query took 2.3s", "2026-11-30T10:42:00.123Z", "warning"),
    ("2026-11-30 10:42:01,004 - myapp - INFO - Loaded 42 plugins", "2026-11-30T10:42:01.004Z", "info"),
    ("2026-11-30 10:42:02,950 - myapp.api - ERROR - Unhandled exception in handler", "2026-11-30T10:42:02.950Z", "error"),
    ("2026-11-30 10:42:03,000 - myapp - DEBUG - cache size=12", "2026-11-30T10:42:03.000Z", "debug"),
    ("2026-11-30 10:42:04,500 - myapp - CRITICAL - Out of memory", "2026-11-30T10:42:04.500Z", "critical"),
    ("2026-11-30 10:42:05,501 INFO myapp.worker: finished job 7 with 0 errors", "2026-11-30T10:42:05.501Z", "info"),
    ("2026-11-30 10:42:06,502 WARNING myapp.worker: job 8 slow", "2026-11-30T10:42:06.502Z", "warning"),
])

fmt_lines("gunicorn", lambda t, k, m: f"[{ymd(t)} +0000] [{m[0]}] [{k}] {m[1]}", 0, [
    ("INFO", "info", ("1", "Starting gunicorn 21.2.0")),
    ("INFO", "info", ("1", "Listening at: http://0.0.0.0:8000 (1)")),
    ("INFO", "info", ("7", "Booting worker with pid: 7")),
    ("CRITICAL", "critical", ("1", "WORKER TIMEOUT (pid:7)")),
    ("ERROR", "error", ("7", "Error handling request /api/items")),
    ("WARNING", "warning", ("1", "Worker with pid 7 was terminated due to signal 9")),
    ("DEBUG", "debug", ("7", "GET /health")),
    ("INFO", "info", ("1", "Handling signal: term")),
])

fixed("uvicorn", [
    ("INFO:     Started server process [12]", None, "info"),
    ("INFO:     Waiting for application startup.", None, "info"),
    ("INFO:     Application startup complete.", None, "info"),
    ("INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)", None, "info"),
    ("INFO:     10.0.0.1:53422 - \"GET /error HTTP/1.1\" 500 Internal Server Error", None, "info"),
    ("ERROR:    Exception in ASGI application", None, "error"),
    ("WARNING:  StatReload detected changes in 'app/main.py'. Reloading...", None, "warning"),
    ("DEBUG:    ASGI [1] Started scope", None, "debug"),
])

# --- Go ---------------------------------------------------------------------------------
for i, (body, digits) in enumerate([
    ("Server listening on :8080", 0),
    ("http: TLS handshake error from 10.0.0.1:51234: EOF", 0),
    ("main.go:42: failed to open config: no such file", 0),
    ("reconnecting after error: connection reset by peer", 0),
    ("http: panic serving 10.0.0.3:4455: runtime error: index out of range", 0),
    ("request done in 12ms", 6),
    ("worker.go:88: 3 warnings, 0 errors", 6),
    ("Starting up with level INFO", 0),
]):
    t = T0 + dt.timedelta(seconds=i * 13, microseconds=i * 101010)
    stamp = t.strftime("%Y/%m/%d %H:%M:%S") + ("." + frac(t, 6) if digits else "")
    emit("go-log", f"{stamp} {body}", rfc(t, digits), None)

fmt_lines("go-slog-default", lambda t, k, m: f"{t.strftime('%Y/%m/%d %H:%M:%S')} {k} {m}", 0, [
    ("INFO", "info", "hello count=3"),
    ("WARN", "warning", "disk almost full path=/var used=0.93"),
    ("ERROR", "error", "request failed err=\"connection refused\" url=/api"),
    ("DEBUG", "debug", "cache lookup key=u:42 hit=false"),
    ("INFO", "info", "shutting down reason=\"error budget exhausted\""),
    ("INFO", "info", "listening addr=:8080"),
    ("WARN", "warning", "retrying attempt=2"),
    ("ERROR", "error", "giving up"),
])

fmt_lines("go-slog-text", lambda t, k, m: f"time={t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,3)}Z level={k} {m}", 3, [
    ("INFO", "info", "msg=\"server started\" addr=:8080"),
    ("WARN", "warning", "msg=\"slow request\" path=/api dur=1.2s"),
    ("ERROR", "error", "msg=\"query failed\" err=\"timeout\""),
    ("DEBUG", "debug", "msg=\"cache miss\" key=k1"),
    ("INFO", "info", "msg=\"job finished\" errors=0"),
    ("ERROR+2", "error", "msg=\"custom level\""),
    ("INFO", "info", "msg=\"level=error is just text here\""),
    ("WARN", "warning", "msg=retry attempt=3"),
])
fixed("go-slog-text", [
    ("time=2026-11-30T11:42:09.100+01:00 level=INFO msg=\"local zone\"", "2026-11-30T10:42:09.100Z", "info"),
    ("time=2026-11-30T05:42:10.200-05:00 level=ERROR msg=\"other zone\"", "2026-11-30T10:42:10.200Z", "error"),
])

fmt_lines("go-slog-json", lambda t, k, m: json.dumps({"time": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}" + "000Z", "level": k, "msg": m[0], **m[1]}, separators=(",", ":")), 6, [
    ("INFO", "info", ("server started", {"addr": ":8080"})),
    ("WARN", "warning", ("slow request", {"path": "/api"})),
    ("ERROR", "error", ("query failed", {"err": "timeout"})),
    ("DEBUG", "debug", ("cache miss", {"key": "k1"})),
    ("INFO", "info", ("upstream said ERROR", {"status": 502})),
    ("ERROR", "error", ("panic recovered", {"stack": "goroutine 1 [running]"})),
    ("WARN", "warning", ("deprecated flag", {"flag": "-v"})),
    ("INFO", "info", ("done", {"n": 3})),
])

fmt_lines("logrus-text", lambda t, k, m: f"time=\"{t.strftime('%Y-%m-%dT%H:%M:%S')}Z\" level={k} msg=\"{m}\"", 0, [
    ("info", "info", "Starting containerd"),
    ("error", "error", "failed to connect\" error=\"dial tcp 10.0.0.1:443: i/o timeout"),
    ("warning", "warning", "Your kernel does not support swap memory limit"),
    ("debug", "debug", "Calling GET /_ping"),
    ("fatal", "critical", "Error starting daemon: pid file found"),
    ("info", "info", "Loading containers: done."),
    ("trace", "debug", "event published\" ns=moby topic=/tasks/exit"),
    ("info", "info", "ignoring event\" module=libcontainerd error=\"none\""),
])
fixed("logrus-text", [
    ("time=\"2026-11-30T11:42:09.123456789+01:00\" level=warning msg=\"zone offset\"", "2026-11-30T10:42:09.123Z", "warning"),
    ("INFO[0000] Starting up                                   version=1.2", None, "info"),
    ("WARN[0003] config file not found, using defaults", None, "warning"),
    ("ERRO[0005] failed to pull image                           error=\"not found\"", None, "error"),
    ("DEBU[0006] resolving                                      host=registry-1.docker.io", None, "debug"),
])

def zap(t, k, m):
    return json.dumps({"level": k, "ts": round(t.timestamp(), 6), "caller": m[0], "msg": m[1], **m[2]}, separators=(",", ":"))
fmt_lines("zap-json", zap, 0, [
    ("info", "info", ("server/main.go:42", "listening", {"addr": ":8080"})),
    ("error", "error", ("server/handler.go:88", "request failed", {"error": "EOF", "stacktrace": "main.handle\n\t/app/handler.go:88"})),
    ("warn", "warning", ("etcdserver/server.go:1234", "apply request took too long", {"took": "210ms"})),
    ("debug", "debug", ("cache/cache.go:10", "miss", {"key": "a"})),
    ("fatal", "critical", ("main.go:20", "cannot bind", {"error": "address in use"})),
    ("dpanic", "critical", ("main.go:30", "invariant broken", {})),
    ("info", "info", ("raft/raft.go:700", "elected leader", {"term": 3})),
    ("info", "info", ("server/handler.go:99", "completed with error=nil", {})),
])
fixed("zap-json", [
    ("{\"level\":\"warn\",\"ts\":\"2026-11-30T10:42:09.123Z\",\"caller\":\"x/y.go:1\",\"msg\":\"iso8601 encoder\"}", "2026-11-30T10:42:09.123Z", "warning"),
    ("{\"level\":\"info\",\"ts\":\"2026-11-30T11:42:10.456+0100\",\"logger\":\"etcd\",\"msg\":\"zone offset without colon\"}", "2026-11-30T10:42:10.456Z", "info"),
])

fmt_lines("zap-console", lambda t, k, m: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,3)}Z\t{k}\t{m[0]}\t{m[1]}", 3, [
    ("INFO", "info", ("server/main.go:42", "listening\t{\"addr\": \":8080\"}")),
    ("ERROR", "error", ("server/handler.go:88", "request failed\t{\"error\": \"EOF\"}")),
    ("WARN", "warning", ("cache/cache.go:10", "evicting")),
    ("DEBUG", "debug", ("cache/cache.go:12", "miss")),
    ("INFO", "info", ("job/job.go:5", "0 errors")),
    ("DPANIC", "critical", ("main.go:30", "invariant broken")),
    ("FATAL", "critical", ("main.go:20", "cannot bind")),
    ("INFO", "info", ("job/job.go:6", "done")),
])

def zerolog(t, k, m):
    d = {"level": k, "time": int(t.timestamp())} if m[0] else {"level": k, "time": t.strftime("%Y-%m-%dT%H:%M:%SZ")}
    d.update(m[2])
    d["message"] = m[1]
    return json.dumps(d, separators=(",", ":"))
fmt_lines("zerolog-json", zerolog, 0, [
    ("warn", "warning", (True, "disk low", {})),
    ("info", "info", (True, "started", {"port": 8080})),
    ("error", "error", (True, "failed", {"error": "boom"})),
    ("debug", "debug", (False, "tick", {})),
    ("info", "info", (False, "service ready", {})),
    ("fatal", "critical", (False, "cannot start", {})),
    ("trace", "debug", (True, "enter fn", {})),
    ("panic", "emergency", (True, "nil map write", {})),
    ("info", "info", (True, "request", {"status": 500, "note": "level error in body"})),
])

fmt_lines("prometheus", lambda t, k, m: f"ts={t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,3)}Z caller={m[0]} level={k} {m[1]}", 3, [
    ("info", "info", ("main.go:585", "msg=\"Starting Prometheus Server\" mode=server version=2.48.0")),
    ("warn", "warning", ("scrape.go:1372", "component=\"scrape manager\" msg=\"Append failed\" err=\"out of bounds\"")),
    ("error", "error", ("notifier.go:530", "component=notifier msg=\"Error sending alert\" err=\"context deadline exceeded\"")),
    ("debug", "debug", ("manager.go:300", "component=\"discovery manager\" msg=\"Discoverer channel closed\"")),
    ("info", "info", ("head.go:600", "component=tsdb msg=\"Replaying WAL, this may take a while\"")),
    ("info", "info", ("compact.go:519", "component=tsdb msg=\"write block\" errors=0")),
    ("warn", "warning", ("klog.go:108", "component=k8s_client_runtime func=Warning msg=\"watch ended with error\"")),
    ("error", "error", ("main.go:1100", "msg=\"Error loading config\" err=\"parsing YAML\"")),
])

fmt_lines("hclog", lambda t, k, m: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,3)}Z [{k}]{' ' * (6 - len(k))}{m}", 3, [
    ("INFO", "info", "agent: Consul agent running!"),
    ("WARN", "warning", "agent: Node name will not be discoverable via DNS due to invalid characters"),
    ("ERROR", "error", "agent.server.raft: failed to appendEntries to: peer=10.0.0.3:8300 error=\"dial tcp: i/o timeout\""),
    ("DEBUG", "debug", "agent.router.manager: Rebalanced servers: new_order=true"),
    ("TRACE", "debug", "core: request forwarding"),
    ("INFO", "info", "core: post-unseal setup complete"),
    ("WARN", "warning", "core: no `api_addr` value specified in config"),
    ("ERROR", "error", "nomad.client: error during job run: error=\"exit status 1\""),
])

fmt_lines("klog", lambda t, k, m: f"{k}{t.strftime('%m%d %H:%M:%S')}.{frac(t,6)}    {m}", 6, [
    ("I", "info", "4521 server.go:123] Successfully started kube-apiserver"),
    ("E", "error", "4521 reflector.go:147] k8s.io/client-go/informers: Failed to watch *v1.Pod: unauthorized"),
    ("W", "warning", "4521 warnings.go:70] v1 ComponentStatus is deprecated in v1.19+"),
    ("F", "critical", "   1 server.go:200] failed to run Kubelet: misconfiguration"),
    ("I", "info", "   7 controller.go:88] sync finished errors=0"),
    ("E", "error", "   7 leaderelection.go:330] error retrieving resource lock kube-system/kube-scheduler"),
    ("I", "info", "   7 event.go:294] \"Event occurred\" type=\"Warning\" reason=\"BackOff\""),
    ("W", "warning", "   7 reflector.go:424] watch of *v1.Node ended with: an error on the server"),
])

# --- Node ----------------------------------------------------------------------------------
def bunyan(t, k, m):
    return json.dumps({"name": "myapp", "hostname": "web-1", "pid": 4242, "level": k, "msg": m, "time": rfc(t, 3), "v": 0}, separators=(",", ":"))
fmt_lines("bunyan", bunyan, 3, [
    (30, "info", "listening on 8080"),
    (40, "warning", "slow response"),
    (50, "error", "request failed"),
    (60, "critical", "uncaught exception"),
    (20, "debug", "cache miss"),
    (10, "debug", "enter handler"),
    (30, "info", "request finished with error=false"),
    (50, "error", "db down"),
])

def pino(t, k, m):
    return json.dumps({"level": k, "time": int(t.timestamp() * 1000), "pid": 77, "hostname": "api-2", "msg": m}, separators=(",", ":"))
fmt_lines("pino", pino, 3, [
    (30, "info", "Server listening at http://0.0.0.0:3000"),
    (40, "warning", "deprecated option"),
    (50, "error", "request errored"),
    (60, "critical", "process exiting"),
    (20, "debug", "route matched"),
    (10, "debug", "trace"),
    (30, "info", "incoming request"),
    (30, "info", "request completed"),
])

# --- Web servers and proxies ----------------------------------------------------------------
fmt_lines("nginx-error", lambda t, k, m: f"{t.strftime('%Y/%m/%d %H:%M:%S')} [{k}] {m}", 0, [
    ("error", "error", "1234#1234: *1 open() \"/usr/share/nginx/html/favicon.ico\" failed (2: No such file or directory), client: 10.0.0.1, server: localhost, request: \"GET /favicon.ico HTTP/1.1\""),
    ("warn", "warning", "1#1: conflicting server name \"example.com\" on 0.0.0.0:80, ignored"),
    ("notice", "notice", "1#1: using the \"epoll\" event method"),
    ("crit", "critical", "1234#0: *5 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share)"),
    ("alert", "alert", "1#1: worker process 29 exited on signal 11"),
    ("emerg", "emergency", "1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)"),
    ("info", "info", "29#29: *3 client 10.0.0.2 closed keepalive connection"),
    ("debug", "debug", "29#29: *3 http header: \"Host: example.com\""),
    ("error", "error", "29#29: *7 upstream timed out (110: Connection timed out) while reading response header from upstream"),
])

def clf(t):
    return t.strftime("%d/") + MON[t.month - 1] + t.strftime("/%Y:%H:%M:%S +0000")
fmt_lines("nginx-access", lambda t, k, m: f"10.0.0.{k} - - [{clf(t)}] {m}", 0, [
    (1, None, "\"GET /index.html HTTP/1.1\" 200 615 \"-\" \"curl/8.4.0\""),
    (2, None, "\"GET /error HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.0\""),
    (3, None, "\"POST /api/log?level=ERROR HTTP/1.1\" 500 0 \"-\" \"python-requests/2.31\""),
    (4, None, "\"GET /warn.png HTTP/2.0\" 200 1024 \"https://example.com/\" \"Mozilla/5.0\""),
    (5, None, "\"GET /health HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.28\""),
    (6, None, "\"GET /debug/pprof/ HTTP/1.1\" 403 0 \"-\" \"Go-http-client/1.1\""),
    (7, None, "\"HEAD / HTTP/1.1\" 301 0 \"-\" \"-\""),
    (8, None, "\"GET /info HTTP/1.1\" 200 12 \"-\" \"Wget/1.21\""),
])

def apache_ts(t):
    return f"{DOW[t.weekday()]} {MON[t.month-1]} {t.day:02d} {t.strftime('%H:%M:%S')}.{frac(t,6)} {t.year}"
fmt_lines("apache24-error", lambda t, k, m: f"[{apache_ts(t)}] [{k}] {m}", 6, [
    ("core:error", "error", "[pid 123:tid 140234] [client 10.0.0.1:55012] AH00126: Invalid URI in request GET /..%2f HTTP/1.1"),
    ("mpm_event:notice", "notice", "[pid 1:tid 140001] AH00489: Apache/2.4.58 (Unix) configured -- resuming normal operations"),
    ("ssl:warn", "warning", "[pid 1:tid 140001] AH01909: www.example.com:443:0 server certificate does NOT include an ID which matches the server name"),
    ("proxy:error", "error", "[pid 88:tid 140500] (111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:8080 (localhost:8080) failed"),
    ("authz_core:debug", "debug", "[pid 88:tid 140500] mod_authz_core.c(815): [client 10.0.0.4:1] AH01626: authorization result of Require all granted: granted"),
    ("core:trace3", "debug", "[pid 88:tid 140500] request.c(293): [client 10.0.0.4:1] request authorized without authentication"),
    ("php:error", "error", "[pid 90:tid 140600] [client 10.0.0.5:2] PHP Fatal error:  Uncaught Error: Call to undefined function foo()"),
    ("core:crit", "critical", "[pid 1:tid 140001] AH00102: [Mon Nov 30 10:42:00 2026] file worker.c, line 1000, assertion failed"),
    ("core:notice", "notice", "[pid 1:tid 140001] AH00094: Command line: '/usr/sbin/httpd -D FOREGROUND'"),
    ("mpm_prefork:alert", "alert", "[pid 1] AH00050: Child 77 returned a Fatal error... Apache is exiting!"),
])

fmt_lines("haproxy", lambda t, k, m: f"{MON[t.month-1]} {t.day:2d} {t.strftime('%H:%M:%S')} lb1 haproxy[1234]: {m.format(clf=t.strftime('%d/') + MON[t.month-1] + t.strftime('/%Y:%H:%M:%S.') + frac(t,3))}", 0, [
    (None, None, "10.0.0.1:51234 [{clf}] fe_http be_app/app1 0/0/1/12/13 200 512 - - ---- 3/3/0/0/0 0/0 \"GET / HTTP/1.1\""),
    (None, None, "10.0.0.2:51235 [{clf}] fe_http be_app/<NOSRV> -1/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 \"GET /error HTTP/1.1\""),
    (None, None, "Server be_app/app2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms."),
    (None, None, "Proxy fe_http started."),
    (None, None, "10.0.0.3:1 [{clf}] fe_tcp be_db/db1 1/0/5000 0 cD 2/2/1/1/0 0/0"),
    (None, None, "Server be_app/app2 is UP, reason: Layer7 check passed, code: 200, check duration: 3ms."),
    (None, None, "backend be_app has no server available!"),
    (None, None, "Health check for server be_app/app1 failed, reason: Layer7 wrong status, code: 500, info: \"Internal Server Error\""),
])
fixed("haproxy", [
    ("[NOTICE]   (1) : New worker (8) forked", None, "notice"),
    ("[WARNING]  (1) : config : missing timeouts for frontend 'fe_http'.", None, "warning"),
    ("[ALERT]    (1) : config : parsing [/etc/haproxy/haproxy.cfg:12] : unknown keyword 'frontnd'.", None, "alert"),
    ("[NOTICE]   (1) : Loading success.", None, "notice"),
])

fmt_lines("envoy", lambda t, k, m: f"[{ymd(t)}.{frac(t,3)}][{m[0]}][{k}][{m[1]}] {m[2]}", 3, [
    ("info", "info", ("1", "main", "[source/server/server.cc:932] starting main dispatch loop")),
    ("warning", "warning", ("1", "config", "[source/extensions/config_subscription/grpc/grpc_stream.h:152] StreamAggregatedResources gRPC config stream closed: 14, upstream connect error")),
    ("error", "error", ("14", "upstream", "[source/common/upstream/health_checker_impl.cc:300] health check failed")),
    ("debug", "debug", ("14", "http", "[source/common/http/conn_manager_impl.cc:329] [C3][S1] request end stream")),
    ("critical", "critical", ("1", "main", "[source/server/server.cc:117] error initializing configuration")),
    ("trace", "debug", ("14", "connection", "[source/common/network/connection_impl.cc:563] [C3] socket event: 3")),
    ("info", "info", ("1", "upstream", "[source/common/upstream/cds_api_helper.cc:32] cds: add 3 cluster(s), remove 0 cluster(s)")),
])
fmt_lines("envoy", lambda t, k, m: f"[{t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,3)}Z] {m}", 3, [
    (None, None, "\"GET /api/v1/items HTTP/1.1\" 200 - 0 1234 5 4 \"-\" \"curl/7.68.0\" \"3f1c-...\" \"example.com\" \"10.0.0.2:8080\""),
    (None, None, "\"POST /error HTTP/1.1\" 503 UF 12 91 1 - \"10.0.0.9\" \"Go-http-client/1.1\" \"a1b2\" \"api\" \"-\""),
    (None, None, "\"GET /warn HTTP/2\" 404 NR 0 0 0 - \"-\" \"grpc-go/1.59\" \"c3d4\" \"api\" \"-\""),
])

def caddy(t, k, m):
    return json.dumps({"level": k, "ts": round(t.timestamp(), 7), "logger": m[0], "msg": m[1], **m[2]}, separators=(",", ":"))
fmt_lines("caddy", caddy, 0, [
    ("info", "info", ("http.log", "server running", {"name": "srv0", "protocols": ["h1", "h2", "h3"]})),
    ("warn", "warning", ("http.auto_https", "server is listening only on the HTTP port", {"server_name": "srv0"})),
    ("error", "error", ("http.log.error", "dial tcp 127.0.0.1:9000: connect: connection refused", {"status": 502})),
    ("info", "info", ("http.log.access", "handled request", {"status": 500, "request": {"method": "GET", "uri": "/error"}})),
    ("debug", "debug", ("http.handlers.reverse_proxy", "upstream roundtrip", {"duration": 0.004})),
    ("info", "info", ("tls.obtain", "certificate obtained successfully", {"identifier": "example.com"})),
    ("error", "error", ("tls.issuance.acme", "could not get certificate from issuer", {"error": "HTTP 429"})),
    ("fatal", "critical", ("", "loading initial config", {"error": "adapting config"})),
])

fmt_lines("traefik", lambda t, k, m: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}Z {k} {m}", 0, [
    ("INF", "info", "Traefik version 3.0.0 built on 2024-04-29T14:25:59Z version=3.0.0"),
    ("ERR", "error", "error=\"client version 1.24 is too old\" providerName=docker"),
    ("WRN", "warning", "A new release of Traefik has been found: 3.0.1. Please consider updating."),
    ("DBG", "debug", "Configuration received config={\"http\":{}} providerName=file"),
    ("INF", "info", "Starting provider *docker.Provider"),
    ("ERR", "error", "Cannot start the provider *file.Provider error=\"open x: no such file\""),
    ("FTL", "critical", "Command error error=\"field not found\""),
])
fixed("traefik", [
    ("time=\"2026-11-30T10:42:09Z\" level=info msg=\"Configuration loaded from flags.\"", "2026-11-30T10:42:09Z", "info"),
    ("time=\"2026-11-30T10:42:10Z\" level=error msg=\"service \\\"web\\\" error: unable to find the IP address\" providerName=docker", "2026-11-30T10:42:10Z", "error"),
])

# --- Databases and brokers ----------------------------------------------------------------
fmt_lines("postgresql", lambda t, k, m: f"{ymd(t)}.{frac(t,3)} UTC [{m[0]}] {k}  {m[1]}", 3, [
    ("LOG:", "info", ("1", "database system is ready to accept connections")),
    ("ERROR:", "error", ("4242", "duplicate key value violates unique constraint \"users_pkey\"")),
    ("DETAIL:", None, ("4242", "Key (id)=(1) already exists.")),
    ("STATEMENT:", None, ("4242", "INSERT INTO users VALUES (1, 'a')")),
    ("FATAL:", "critical", ("4300", "password authentication failed for user \"app\"")),
    ("WARNING:", "warning", ("4301", "there is no transaction in progress")),
    ("LOG:", "info", ("64", "checkpoint starting: time")),
    ("HINT:", None, ("4302", "Consider increasing the configuration parameter \"max_wal_size\".")),
    ("LOG:", "info", ("4303", "duration: 1234.567 ms  statement: SELECT * FROM errors")),
    ("DEBUG:", "debug", ("4304", "autovacuum: processing database \"app\"")),
])
fixed("postgresql", [
    ("2026-11-30 10:42:20 UTC [77-1] app@db LOG:  connection received: host=10.0.0.3 port=5555", "2026-11-30T10:42:20Z", "info"),
    ("2026-11-30 10:42:21.500 UTC [77] app@db ERROR:  syntax error at or near \"SELEC\" at character 1", "2026-11-30T10:42:21.500Z", "error"),
])

fmt_lines("mysql8", lambda t, k, m: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,6)}Z {m[0]} [{k}] [{m[1]}] [{m[2]}] {m[3]}", 6, [
    ("Warning", "warning", ("0", "MY-010055", "Server", "IP address 'x' could not be resolved: Name or service not known")),
    ("System", "info", ("0", "MY-010116", "Server", "/usr/sbin/mysqld (mysqld 8.0.35) starting as process 1")),
    ("ERROR", "error", ("0", "MY-010262", "Server", "Can't start server: Bind on TCP/IP port: Address already in use")),
    ("Note", "info", ("1", "MY-012366", "InnoDB", "Using Linux native AIO")),
    ("System", "info", ("0", "MY-010931", "Server", "/usr/sbin/mysqld: ready for connections. Version: '8.0.35'  socket: '/var/run/mysqld/mysqld.sock'  port: 3306")),
    ("Warning", "warning", ("0", "MY-011810", "Server", "Insecure configuration for --pid-file")),
    ("ERROR", "error", ("12", "MY-013183", "InnoDB", "Assertion failure: error in page")),
    ("Note", "info", ("8", "MY-010914", "Server", "Aborted connection 8 to db: 'app' (Got an error reading communication packets)")),
])

def redis_ts(t):
    return f"{t.day:02d} {MON[t.month-1]} {t.year} {t.strftime('%H:%M:%S')}.{frac(t,3)}"
fmt_lines("redis", lambda t, k, m: f"{m[0]} {redis_ts(t)} {k} {m[1]}", 3, [
    ("*", "notice", ("1:M", "Ready to accept connections tcp")),
    ("#", "warning", ("1:M", "WARNING Memory overcommit must be enabled! Without it, a background save or replication may fail")),
    (".", "debug", ("1:M", "Accepted 10.0.0.5:43210")),
    ("-", "debug", ("1:M", "Client closed connection id=5 addr=10.0.0.5:43210")),
    ("*", "notice", ("1:C", "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo")),
    ("#", "warning", ("7:S", "Error condition on socket for SYNC: Connection refused")),
    ("*", "notice", ("1:M", "DB saved on disk")),
    ("*", "notice", ("42:C", "Fork CoW for RDB: current 0 MB, peak 0 MB, average 0 MB")),
    ("#", "warning", ("1:X", "Sentinel ID is 6a4b")),
])

def mongo(t, k, m):
    return json.dumps({"t": {"$date": t.strftime("%Y-%m-%dT%H:%M:%S.") + frac(t, 3) + "+00:00"}, "s": k, "c": m[0], "id": m[1], "ctx": m[2], "msg": m[3], "attr": {}}, separators=(",", ":"))
fmt_lines("mongodb", mongo, 3, [
    ("I", "info", ("NETWORK", 23016, "listener", "Waiting for connections")),
    ("W", "warning", ("CONTROL", 22120, "initandlisten", "Access control is not enabled for the database")),
    ("E", "error", ("STORAGE", 22435, "initandlisten", "WiredTiger error message")),
    ("F", "critical", ("-", 23091, "conn12", "Fatal assertion")),
    ("D1", "debug", ("COMMAND", 21962, "conn3", "Assigning operation to a thread")),
    ("I", "info", ("NETWORK", 22943, "listener", "Connection accepted")),
    ("D3", "debug", ("REPL", 21401, "ReplCoord-0", "Scheduling heartbeat")),
    ("I", "info", ("COMMAND", 51803, "conn7", "Slow query")),
])

def rabbit_ts(t):
    return f"{ymd(t)}.{frac(t,6)}+00:00"
fmt_lines("rabbitmq", lambda t, k, m: f"{rabbit_ts(t)} [{k}] <0.{m[0]}.0> {m[1]}", 6, [
    ("info", "info", ("230", "Starting RabbitMQ 3.12.10 on Erlang 26.1.2")),
    ("warning", "warning", ("230", "The default user is guest with password guest")),
    ("error", "error", ("812", "Error on AMQP connection <0.812.0> (10.0.0.5:5555 -> 10.0.0.6:5672, state: starting): PLAIN login refused")),
    ("notice", "notice", ("44", "Feature flags: checking nodes `rabbit@host` and `rabbit@peer` compatibility...")),
    ("debug", "debug", ("300", "Asked to [re-]register this node (rabbit@host) with epmd...")),
    ("info", "info", ("800", "accepting AMQP connection <0.800.0> (10.0.0.5:5555 -> 10.0.0.6:5672)")),
    ("critical", "critical", ("1", "Crash dump is being written")),
    ("info", "info", ("900", "closing AMQP connection (error count 0)")),
])

fmt_lines("rails", lambda t, k, m: f"{k[0]}, [{t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,6)} #{m[0]}] {k:>5} -- : {m[1]}", 6, [
    ("INFO", "info", ("12345", "Started GET \"/\" for 127.0.0.1")),
    ("INFO", "info", ("12345", "Completed 200 OK in 12ms (Views: 8.1ms | ActiveRecord: 1.2ms)")),
    ("ERROR", "error", ("12345", "ActiveRecord::RecordNotFound (Couldn't find User with 'id'=42)")),
    ("WARN", "warning", ("12345", "Can't verify CSRF token authenticity.")),
    ("DEBUG", "debug", ("12345", "  User Load (0.4ms)  SELECT \"users\".* FROM \"users\"")),
    ("FATAL", "critical", ("12345", "ActionController::RoutingError (No route matches [GET] \"/error\")")),
    ("INFO", "info", ("12346", "Processing by ErrorsController#show as HTML")),
    ("ERROR", "error", ("12346", "  app/controllers/items_controller.rb:10:in `show'")),
])

# --- System --------------------------------------------------------------------------------
fmt_lines("journalctl-short-iso", lambda t, k, m: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}{k} web-1 {m}", 0, [
    ("+0000", None, "systemd[1]: Started nginx.service - A high performance web server."),
    ("+0000", None, "sshd[2211]: Accepted publickey for deploy from 10.0.0.1 port 50122 ssh2"),
    ("+00:00", None, "kernel: EXT4-fs error (device sda1): ext4_find_entry:1455: comm nginx: reading directory lblock 0"),
    ("+00:00", None, "systemd[1]: nginx.service: Main process exited, code=exited, status=1/FAILURE"),
    ("+0000", None, "CRON[3001]: (root) CMD (run-parts /etc/cron.hourly)"),
    ("+0000", "warning", "dockerd[800]: time=\"2026-11-30T10:42:00Z\" level=warning msg=\"Health check failed\""),
    ("+00:00", None, "kernel: Out of memory: Killed process 4242 (java) total-vm:8123456kB"),
    ("+0000", None, "systemd-logind[600]: New session 42 of user deploy."),
])
fixed("journalctl-short-iso", [
    ("2026-11-30T11:42:09+0100 web-2 sshd[9]: Connection closed by 10.0.0.7 port 1234", "2026-11-30T10:42:09Z", None),
])

fmt_lines("journalctl-short-precise", lambda t, k, m: f"{MON[t.month-1]} {t.day:02d} {t.strftime('%H:%M:%S')}.{frac(t,6)} web-1 {m}", 6, [
    (None, None, "systemd[1]: Starting Daily apt upgrade and clean activities..."),
    (None, None, "kernel: usb 1-1: new high-speed USB device number 2 using xhci_hcd"),
    (None, None, "sshd[2211]: error: kex_exchange_identification: Connection closed by remote host"),
    (None, "info", "containerd[700]: time=\"2026-11-30T10:42:00.1Z\" level=info msg=\"loading plugin\""),
    (None, None, "systemd[1]: Failed to start Daily apt upgrade."),
    (None, None, "NetworkManager[555]: <info>  [1764499320.1234] device (eth0): state change"),
    (None, None, "sudo[3003]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/ls"),
    (None, None, "kernel: audit: type=1400 audit(1764499320.123:42): apparmor=\"DENIED\" operation=\"open\""),
])

# syslog RFC 5424 written to a file (rsyslog RSYSLOG_SyslogProtocol23Format): the level is the
# PRI's severity (PRI mod 8).
fixed("syslog-5424", [
    ("<165>1 2026-11-30T10:42:00.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event log entry", "2026-11-30T10:42:00.003Z", "notice"),
    ("<34>1 2026-11-30T11:42:01.123+01:00 host su - ID47 - 'su root' failed for lonvick on /dev/pts/8", "2026-11-30T10:42:01.123Z", "critical"),
    ("<14>1 2026-11-30T10:42:02Z web-1 app 4242 - - user request served", "2026-11-30T10:42:02Z", "info"),
    ("<11>1 2026-11-30T10:42:03.500Z web-1 app 4242 - - database unreachable", "2026-11-30T10:42:03.500Z", "error"),
    ("<12>1 2026-11-30T10:42:04.000001Z web-1 app 4242 - - disk 91% full", "2026-11-30T10:42:04.000001Z", "warning"),
    ("<15>1 2026-11-30T10:42:05Z web-1 app 4242 - - cache stats hits=3", "2026-11-30T10:42:05Z", "debug"),
    ("<8>1 2026-11-30T10:42:06Z web-1 kernel - - - panic: not syncing", "2026-11-30T10:42:06Z", "emergency"),
    ("<190>1 2026-11-30T10:42:07.77Z web-1 nginx 99 - - GET /error 500", "2026-11-30T10:42:07.770Z", "info"),
    ("<86>1 2026-11-30T10:42:08Z web-1 sshd 77 - - error: maximum authentication attempts exceeded", "2026-11-30T10:42:08Z", "info"),
])

# Event Viewer "Save All Events As… Text (Tab delimited)": Level, Date and Time (en-US), Source,
# Event ID, Task Category, then the message.
fixed("windows-evt-text", [
    ("Information\t11/30/2026 10:42:00 AM\tService Control Manager\t7036\tNone\tThe Windows Update service entered the running state.", "2026-11-30T10:42:00Z", "info"),
    ("Error\t11/30/2026 10:42:05 AM\tService Control Manager\t7000\tNone\tThe Foo service failed to start due to the following error: The system cannot find the file specified.", "2026-11-30T10:42:05Z", "error"),
    ("Warning\t11/30/2026 10:43:10 AM\tDNS Client Events\t1014\t(1014)\tName resolution for the name example.com timed out.", "2026-11-30T10:43:10Z", "warning"),
    ("Critical\t11/30/2026 9:15:42 AM\tMicrosoft-Windows-Kernel-Power\t41\t(63)\tThe system has rebooted without cleanly shutting down first.", "2026-11-30T09:15:42Z", "critical"),
    ("Information\t11/30/2026 1:02:03 AM\tEventLog\t6005\tNone\tThe Event log service was started.", "2026-11-30T01:02:03Z", "info"),
    ("Error\t11/29/2026 11:59:59 PM\tApplication Error\t1000\t(100)\tFaulting application name: app.exe, version: 1.0.0.0", "2026-11-29T23:59:59Z", "error"),
    ("Information\t11/30/2026 10:44:00 AM\tMsiInstaller\t1033\tNone\tWindows Installer installed the product. Installation success or error status: 0.", "2026-11-30T10:44:00Z", "info"),
    ("Warning\t11/30/2026 12:05:00 PM\tTime-Service\t129\tNone\tNtpClient was unable to set a domain peer.", "2026-11-30T12:05:00Z", "warning"),
])

# --- .NET ----------------------------------------------------------------------------------
fixed("dotnet-console", [
    ("info: Microsoft.Hosting.Lifetime[0]", None, "info"),
    ("      Now listening on: http://localhost:5000", None, None),
    ("warn: Microsoft.AspNetCore.DataProtection.Repositories.EphemeralXmlRepository[50]", None, "warning"),
    ("fail: Microsoft.AspNetCore.Server.Kestrel[13]", None, "error"),
    ("      Connection id \"0HN1\", Request id \"0HN1:00000001\": An unhandled exception was thrown by the application.", None, None),
    ("crit: Microsoft.AspNetCore.Hosting.Diagnostics[6]", None, "critical"),
    ("dbug: Microsoft.EntityFrameworkCore.Infrastructure[10403]", None, "debug"),
    ("trce: Microsoft.AspNetCore.Routing.Matching.DfaMatcher[1001]", None, "debug"),
    ("      Application started. Press Ctrl+C to shut down. No error.", None, None),
    ("info: MyApp.Worker[0] Worker running at: 11/30/2026 10:42:00 +00:00", None, "info"),
])

# Serilog console default: [HH:mm:ss LVL] — a time without a date. Label: the latest date that
# puts the time at or before read_time (as for a year-less time), in the input's zone (UTC here).
fixed("serilog", [
    ("[10:42:00 INF] Starting web host", "2026-11-30T10:42:00Z", "info"),
    ("[10:42:01 WRN] Overriding address(es) 'http://+:80'", "2026-11-30T10:42:01Z", "warning"),
    ("[10:42:02 ERR] Failed executing DbCommand (12ms)", "2026-11-30T10:42:02Z", "error"),
    ("[10:42:03 FTL] Host terminated unexpectedly", "2026-11-30T10:42:03Z", "critical"),
    ("[10:42:04 DBG] Hosting starting", "2026-11-30T10:42:04Z", "debug"),
    ("[10:42:05 VRB] Entering handler", "2026-11-30T10:42:05Z", "debug"),
    ("[23:59:59 INF] Midnight job done", "2026-11-29T23:59:59Z", "info"),
    ("2026-11-30 10:42:06.123 +00:00 [INF] File sink line", "2026-11-30T10:42:06.123Z", "info"),
    ("2026-11-30 11:42:07.456 +01:00 [ERR] File sink with zone", "2026-11-30T10:42:07.456Z", "error"),
    ("2026-11-30 10:42:08.789 +00:00 [WRN] Retrying after error", "2026-11-30T10:42:08.789Z", "warning"),
])

fixed("coredns", [
    ("[INFO] plugin/reload: Running configuration SHA512 = 1b22", None, "info"),
    ("[ERROR] plugin/errors: 2 example.org. A: read udp 10.0.0.5:5353->8.8.8.8:53: i/o timeout", None, "error"),
    ("[WARNING] plugin/kubernetes: starting server with unsynced Kubernetes API", None, "warning"),
    ("[INFO] 10.0.0.7:41235 - 4242 \"A IN example.org. udp 29 false 512\" NOERROR qr,rd 45 0.002s", None, "info"),
    ("CoreDNS-1.11.1", None, None),
    ("linux/amd64, go1.20.7, ae2bbc2", None, None),
    ("[DEBUG] plugin/cache: evicted", None, "debug"),
    ("[FATAL] plugin/loop: Loop (127.0.0.1:5353 -> :53) detected for zone \".\"", None, "critical"),
])

# --- Rust ----------------------------------------------------------------------------------
fmt_lines("env_logger", lambda t, k, m: f"[{t.strftime('%Y-%m-%dT%H:%M:%S')}Z {k} {m}", 0, [
    ("ERROR", "error", "my_crate] connection refused"),
    ("INFO ", "info", "my_crate::server] listening on 0.0.0.0:8080"),
    ("WARN ", "warning", "hyper::proto] retrying after error"),
    ("DEBUG", "debug", "reqwest::connect] starting new connection"),
    ("TRACE", "debug", "mio::poll] registering event source"),
    ("INFO ", "info", "my_crate] 0 errors"),
    ("ERROR", "error", "my_crate::db] query failed: timeout"),
    ("INFO ", "info", "my_crate] upstream said [WARN] but ok"),
])
fixed("env_logger", [
    ("[2026-11-30T10:42:09.123Z WARN  my_crate] millisecond precision", "2026-11-30T10:42:09.123Z", "warning"),
    ("[2026-11-30T10:42:10.123456789Z ERROR my_crate] nanosecond precision", "2026-11-30T10:42:10.123Z", "error"),
])

fmt_lines("tracing-subscriber", lambda t, k, m: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{frac(t,6)}Z {k:>5} {m}", 6, [
    ("WARN", "warning", "my_crate::module: low disk space free_mb=512"),
    ("INFO", "info", "request{method=GET uri=/}: my_crate::http: finished status=200"),
    ("ERROR", "error", "my_crate::db: connection lost error=\"broken pipe\""),
    ("DEBUG", "debug", "hyper::client::pool: reuse idle connection"),
    ("TRACE", "debug", "tokio::task: poll"),
    ("INFO", "info", "my_crate: shutdown with 0 errors"),
    ("INFO", "info", "my_crate: peer replied ERROR but was retried"),
    ("ERROR", "error", "span{id=3}: my_crate: failed"),
])

# --- Level ambiguity --------------------------------------------------------------------------
# No level: "error"/"warning" as words inside the message must not be taken as the level.
fixed("no-level-error-word", [
    ("2026-11-30 10:42:00 worker 3 finished with error count 0", "2026-11-30T10:42:00Z", None),
    ("2026-11-30 10:42:01 retrying after error: connection reset", "2026-11-30T10:42:01Z", None),
    ("2026-11-30T10:42:02Z job 42 failed: ERROR from upstream", "2026-11-30T10:42:02Z", None),
    ("2026-11-30 10:42:03 scanned 12 files, 0 warnings, 1 error", "2026-11-30T10:42:03Z", None),
    ("2026-11-30T10:42:04.500Z sync done; last error was WARN-level", "2026-11-30T10:42:04.500Z", None),
    ("2026-11-30 10:42:05 user clicked \"Report error\" button", "2026-11-30T10:42:05Z", None),
    ("2026-11-30 10:42:06 starting backup (mode=info, verbosity=debug)", "2026-11-30T10:42:06Z", None),
    ("2026-11-30 10:42:07 kernel reported a fatal error in module x", "2026-11-30T10:42:07Z", None),
    ("2026-11-30 10:42:08 message queue: critical path latency 12ms", "2026-11-30T10:42:08Z", None),
    ("2026-11-30 10:42:09 this is a debug build, continuing", "2026-11-30T10:42:09Z", None),
])

# A level early in the header and another level word ([INFO], level=info) later in the message:
# the header's level wins.
fixed("level-then-another", [
    ("2026-11-30 10:42:00,100 ERROR [main] c.e.Proxy - upstream log: [INFO] request ok", "2026-11-30T10:42:00.100Z", "error"),
    ("2026-11-30 10:42:01,200 WARN  [main] c.e.Proxy - forwarded \"[ERROR] disk full\" from agent", "2026-11-30T10:42:01.200Z", "warning"),
    ("2026-11-30T10:42:02Z INFO relay: got line \"level=error msg=boom\"", "2026-11-30T10:42:02Z", "info"),
    ("[2026-11-30 10:42:03,300] DEBUG echo [WARN] test (kafka.Test)", "2026-11-30T10:42:03.300Z", "debug"),
    ("2026-11-30 10:42:04.400 [worker-1] ERROR c.e.Job - child said [INFO] done", "2026-11-30T10:42:04.400Z", "error"),
    ("time=\"2026-11-30T10:42:05Z\" level=info msg=\"child stderr: [ERROR] oops\"", "2026-11-30T10:42:05Z", "info"),
    ("2026/11/30 10:42:06 [warn] 7#7: upstream sent \"[error] retry\"", "2026-11-30T10:42:06Z", "warning"),
    ("2026-11-30T10:42:07.000Z  INFO app: remote reported ERROR, WARN and FATAL", "2026-11-30T10:42:07.000Z", "info"),
])

# --- write --------------------------------------------------------------------------------
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "lines.jsonl"), "w", encoding="utf-8", newline="\n") as f:
    for o in OUT:
        f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
counts = {}
for o in OUT:
    counts[o["format"]] = counts.get(o["format"], 0) + 1
print(len(OUT), "lines,", len(counts), "formats")
for k, v in counts.items():
    print(f"  {k}: {v}")

#!/usr/bin/env python3
"""Deterministic generator of LogFlux's labelled log corpus (testdata/corpus).

For each system it writes `<system>.log` (the raw lines, in the shapes that system writes) and
`<system>.labels.jsonl` (one JSON object per line: the line's own time in UTC, its LogFlux level
or null, and its true template with `<*>` for each variable part of the message).

Python 3 standard library only; seeded, so running it again writes the same bytes:

    python3 tools/corpus/generate.py [OUTDIR]        # default: testdata/corpus

A template is written with typed slots `§{kind}` or `§{kind:arg}`; the generator fills each slot
with a random value of that kind and the label's template has `<*>` in its place. The header
(time, level, component, pid, host...) is written by the system's `header` function and is not
part of the template.
"""

import datetime as dt
import json
import os
import random
import re
import sys

LINES_PER_SYSTEM = 1000
SLOT = re.compile(r"§\{([a-z_0-9]+)(?::([^}]*))?\}")
UTC = dt.timezone.utc

# ---------------------------------------------------------------- variable values

USERS = ["root", "admin", "test", "oracle", "guest", "ubuntu", "postgres", "git", "user",
         "ftpuser", "nagios", "support", "pi", "mysql", "www-data", "hadoop", "jenkins"]
HOSTS = ["ns.marryaldkfaczcz.com", "dsl-189-xyz.prod-infinitum.com.mx", "static.vnpt.vn",
         "host-124-9.example.net", "mail.kmu.edu.tw", "216-55-xx.static.reverse.example.org",
         "ip-10-0-3-17.ec2.internal", "node-42.cluster.local", "gw.sjtu.edu.cn"]
WORDS = ["alpha", "beta", "gamma", "delta", "orders", "billing", "cache", "users", "events",
         "reports", "sessions", "metrics"]


def v_int(r, arg):
    lo, hi = re.fullmatch(r"(-?\d+)-(-?\d+)", arg or "0-9999").groups()
    return str(r.randint(int(lo), int(hi)))


def v_neg(r, arg):
    """A signed long like HDFS block ids (about half negative)."""
    n = r.randint(10 ** 17, 9 * 10 ** 18)
    return ("-" if r.random() < 0.5 else "") + str(n)


def v_blk(r, arg):
    return "blk_" + v_neg(r, arg)


def v_ip(r, arg):
    if arg == "private":
        return "10.%d.%d.%d" % (r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))
    return "%d.%d.%d.%d" % (r.randint(11, 223), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))


def v_port(r, arg):
    return str(r.randint(1024, 65535))


def v_hex(r, arg):
    n = int(arg or "8")
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def v_uuid(r, arg):
    h = v_hex(r, "32")
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def v_float(r, arg):
    lo, hi, digits = (arg or "0-100-2").split("-")
    return "%.*f" % (int(digits), r.uniform(float(lo), float(hi)))


def v_choice(r, arg):
    return r.choice(arg.split("|"))


def v_user(r, arg):
    return r.choice(USERS)


def v_host(r, arg):
    return r.choice(HOSTS)


def v_word(r, arg):
    return r.choice(WORDS)


def v_path(r, arg):
    parts = ["user", "root", "tmp", "data", "hadoop", "staging", "logs", "rand", "part"]
    depth = r.randint(2, 5)
    return "/" + "/".join(r.choice(parts) + (str(r.randint(0, 99)) if r.random() < 0.4 else "")
                          for _ in range(depth))


def v_appid(r, arg):
    return "%s_1445144423722_%04d" % (arg or "application", r.randint(1, 40))


def v_attempt(r, arg):
    return "attempt_1445144423722_%04d_%s_%06d_%d" % (
        r.randint(1, 40), r.choice("mr"), r.randint(0, 20), r.randint(0, 2))


def v_container(r, arg):
    return "container_1445144423722_%04d_01_%06d" % (r.randint(1, 40), r.randint(1, 20))


def v_sid(r, arg):
    return "0x" + v_hex(r, "15")


def v_bglnode(r, arg):
    return "R%02d-M%d-N%s-%s:J%02d-U%02d" % (
        r.randint(0, 47), r.randint(0, 1), r.choice("0123456789ABCDEF"), r.choice("CI"),
        r.randint(2, 18), r.randint(1, 11))


def v_version(r, arg):
    return "6.1.7601.%d" % r.randint(17500, 23600)


def v_pkg(r, arg):
    return r.choice(["com.tencent.mm", "com.android.systemui", "com.huawei.android.launcher",
                     "com.tencent.qt.qtl", "com.android.phone", "com.sina.weibo"])


def v_dur(r, arg):
    return str(r.randint(1, 5000)) + r.choice(["ms", "s"]) if arg == "unit" else str(r.randint(1, 5000))


def v_url(r, arg):
    return "/" + "/".join(r.choice(["api", "v1", "v2", "images", "static", "index.html", "login",
                                    "cart", "item", str(r.randint(1, 9999))]) for _ in range(r.randint(1, 4)))


def v_kb(r, arg):
    return r.choice(["%d B" % r.randint(0, 1023), "%.1f KB" % r.uniform(1, 1023),
                     "%.2f MB" % r.uniform(1, 99)])


def v_hms(r, arg):
    return "%02d:%02d" % (r.randint(0, 59), r.randint(0, 59))


def v_hostport(r, arg):
    return "%s:%s" % (v_host(r, None), arg)


def v_ipport(r, arg):
    return "%s:%s" % (v_ip(r, None), arg)


def v_mac(r, arg):
    return ":".join(v_hex(r, "2") for _ in range(6))


VALUES = {
    "int": v_int, "neg": v_neg, "blk": v_blk, "ip": v_ip, "port": v_port, "hex": v_hex,
    "uuid": v_uuid, "float": v_float, "choice": v_choice, "user": v_user, "host": v_host,
    "word": v_word, "path": v_path, "appid": v_appid, "attempt": v_attempt,
    "container": v_container, "sid": v_sid, "bglnode": v_bglnode, "version": v_version,
    "pkg": v_pkg, "dur": v_dur, "url": v_url, "kb": v_kb, "hms": v_hms, "mac": v_mac,
    "hostport": v_hostport, "ipport": v_ipport,
}


def fill(r, message):
    """Returns (line text, template) for a message with slots."""
    text = SLOT.sub(lambda m: VALUES[m.group(1)](r, m.group(2)), message)
    template = SLOT.sub("<*>", message)
    return text, template


# ---------------------------------------------------------------- times

def iso(t, digits):
    """RFC 3339 UTC with exactly the fractional digits the line carries (0, 3 or 6)."""
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 3:
        base += ".%03d" % (t.microsecond // 1000)
    elif digits == 6:
        base += ".%06d" % t.microsecond
    return base + "Z"


def truncate(t, digits):
    if digits == 0:
        return t.replace(microsecond=0)
    if digits == 3:
        return t.replace(microsecond=t.microsecond // 1000 * 1000)
    return t


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def bsd(t):
    """`Jun 14 15:16:01` (day space-padded)."""
    return "%s %2d %s" % (MONTHS[t.month - 1], t.day, t.strftime("%H:%M:%S"))


# ---------------------------------------------------------------- systems
#
# Each system: start time (UTC), mean gap between lines in seconds, fractional digits of its
# timestamps, a header function header(r, t, level, comp) -> str, and templates as
# (level, component, message). `level` is the token the line carries (None: the line has no level);
# LEVEL_NAMES maps it to the LogFlux level of the label.

LEVEL_NAMES = {
    "TRACE": "debug", "DEBUG": "debug", "INFO": "info", "NOTICE": "notice", "WARN": "warning",
    "WARNING": "warning", "ERROR": "error", "SEVERE": "error", "FATAL": "critical",
    "FAILURE": "critical", "CRITICAL": "critical", "Info": "info", "Warning": "warning",
    "Error": "error", "notice": "notice", "error": "error", "warn": "warning", "crit": "critical",
    "V": "debug", "D": "debug", "I": "info", "W": "warning", "E": "error", "F": "critical",
    "info": "info", "emerg": "emergency", "alert": "alert", "debug": "debug",
}


def h_hdfs(r, t, level, comp):
    return "%s %d %s %s: " % (t.strftime("%y%m%d %H%M%S"), r.randint(1, 40000), level, comp)


HDFS = dict(start=dt.datetime(2008, 11, 9, 20, 36, 15, tzinfo=UTC), gap=4.0, digits=0,
            header=h_hdfs, templates=[
    ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder §{int:0-2} for block §{blk} terminating"),
    ("INFO", "dfs.DataNode$PacketResponder", "Received block §{blk} of size §{int:1000-67108864} from /§{ip:private}"),
    ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.addStoredBlock: blockMap updated: §{ip:private}:50010 is added to §{blk} size §{int:1000-67108864}"),
    ("INFO", "dfs.DataNode$DataXceiver", "Receiving block §{blk} src: /§{ip:private}:§{port} dest: /§{ip:private}:50010"),
    ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.allocateBlock: §{path}. §{blk}"),
    ("INFO", "dfs.DataNode$DataXceiver", "§{ip:private}:50010 Served block §{blk} to /§{ip:private}"),
    ("INFO", "dfs.FSDataset", "Deleting block §{blk} file /mnt/hadoop/dfs/data/current/subdir§{int:0-63}/§{blk}"),
    ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.delete: §{blk} is added to invalidSet of §{ip:private}:50010"),
    ("WARN", "dfs.DataNode$DataXceiver", "§{ip:private}:50010:Got exception while serving §{blk} to /§{ip:private}:"),
    ("INFO", "dfs.DataNode", "§{ip:private}:50010 Starting thread to transfer block §{blk} to §{ip:private}:50010"),
    ("INFO", "dfs.DataBlockScanner", "Verification succeeded for §{blk}"),
    ("INFO", "dfs.FSNamesystem", "BLOCK* ask §{ip:private}:50010 to replicate §{blk} to datanode(s) §{ip:private}:50010"),
    ("INFO", "dfs.DataNode", "§{ip:private}:50010:Transmitted block §{blk} to /§{ip:private}:50010"),
    ("INFO", "dfs.DataNode$DataXceiver", "writeBlock §{blk} received exception java.io.IOException: Could not read from stream"),
    ("WARN", "dfs.DataNode$PacketResponder", "IOException in BlockReceiver.run(): java.io.IOException: Connection reset by peer"),
    ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder §{blk} §{int:0-2} Exception java.io.InterruptedIOException: Interruped while waiting for IO on channel"),
    ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for §{blk} on §{ip:private}:50010 size §{int:1000-67108864}"),
    ("WARN", "dfs.PendingReplicationBlocks$PendingReplicationMonitor", "PendingReplicationMonitor timed out block §{blk}"),
    ("INFO", "dfs.DataNode$BlockReceiver", "Exception in receiveBlock for block §{blk} java.io.IOException: Connection reset by peer"),
    ("INFO", "dfs.DataNode$DataXceiver", "Received block §{blk} src: /§{ip:private}:§{port} dest: /§{ip:private}:50010 of size §{int:1000-67108864}"),
    ("ERROR", "dfs.DataNode", "§{ip:private}:50010:DataXceiver: java.io.IOException: Block §{blk} is valid, and cannot be written to."),
    ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.allocateBlock: §{path}/_temporary/_task_200811092030_0001_m_§{int:100000-999999}_0/part-§{int:10000-99999}. §{blk}"),
])


def h_hadoop(r, t, level, comp):
    thread, cls = comp.rsplit(" ", 1)
    return "%s,%03d %s %s %s: " % (t.strftime("%Y-%m-%d %H:%M:%S"), t.microsecond // 1000, level, thread, cls)


HADOOP = dict(start=dt.datetime(2015, 10, 18, 18, 1, 47, 978000, tzinfo=UTC), gap=6.0, digits=3,
              header=h_hadoop, templates=[
    ("INFO", "[RMCommunicator Allocator] org.apache.hadoop.mapreduce.v2.app.rm.RMContainerAllocator", "Recalculating schedule, headroom=<memory:§{int:0-20000}, vCores:§{int:-30-30}>"),
    ("INFO", "[RMCommunicator Allocator] org.apache.hadoop.mapreduce.v2.app.rm.RMContainerAllocator", "Reduce slow start threshold not met. completedMapsForReduceSlowstart §{int:1-20}"),
    ("INFO", "[AsyncDispatcher event handler] org.apache.hadoop.mapreduce.v2.app.job.impl.TaskAttemptImpl", "§{attempt} TaskAttempt Transitioned from §{choice:NEW|UNASSIGNED|ASSIGNED|RUNNING} to §{choice:UNASSIGNED|ASSIGNED|RUNNING|SUCCESS_CONTAINER_CLEANUP}"),
    ("INFO", "[IPC Server handler §{int:0-29} on §{port}] org.apache.hadoop.mapred.TaskAttemptListenerImpl", "Progress of TaskAttempt §{attempt} is : §{float:0-1-7}"),
    ("INFO", "[main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster", "Created MRAppMaster for application §{appid:appattempt}_000001"),
    ("INFO", "[main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster", "Executing with tokens:"),
    ("INFO", "[main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster", "OutputCommitter set in config null"),
    ("INFO", "[main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster", "Using mapred newApiCommitter."),
    ("INFO", "[AsyncDispatcher event handler] org.apache.hadoop.mapreduce.v2.app.job.impl.JobImpl", "§{appid:job}Job Transitioned from §{choice:NEW|INITED|SETUP|RUNNING} to §{choice:INITED|SETUP|RUNNING|COMMITTING}"),
    ("INFO", "[ContainerLauncher #§{int:0-9}] org.apache.hadoop.mapreduce.v2.app.launcher.ContainerLauncherImpl", "Processing the event EventType: CONTAINER_REMOTE_LAUNCH for container §{container} taskAttempt §{attempt}"),
    ("INFO", "[ContainerLauncher #§{int:0-9}] org.apache.hadoop.yarn.client.api.impl.ContainerManagementProtocolProxy", "Opening proxy : MININT-§{choice:FNANLI5|75DGDAM1|KBS8BJB}.fareast.corp.microsoft.com:§{port}"),
    ("WARN", "[RMCommunicator Allocator] org.apache.hadoop.ipc.Client", "Address change detected. Old: msra-sa-41/10.190.173.170:8030 New: msra-sa-41:8030"),
    ("ERROR", "[RMCommunicator Allocator] org.apache.hadoop.mapreduce.v2.app.rm.RMContainerAllocator", "ERROR IN CONTACTING RM."),
    ("INFO", "[RMCommunicator Allocator] org.apache.hadoop.ipc.Client", "Retrying connect to server: msra-sa-41:8030. Already tried §{int:0-9} time(s); retry policy is RetryUpToMaximumCountWithFixedSleep(maxRetries=10, sleepTime=1000 MILLISECONDS)"),
    ("INFO", "[main] org.apache.hadoop.mapred.Task", "Task:§{attempt} is done. And is in the process of committing"),
    ("INFO", "[main] org.apache.hadoop.mapred.MapTask", "Spilling map output"),
    ("INFO", "[main] org.apache.hadoop.mapred.MapTask", "bufstart = §{int:0-104857600}; bufend = §{int:0-104857600}; bufvoid = 104857600"),
    ("INFO", "[main] org.apache.hadoop.mapred.MapTask", "kvstart = §{int:0-26214396}(§{int:0-104857584}); kvend = §{int:0-26214396}(§{int:0-104857584}); length = §{int:0-6553600}/6553600"),
    ("INFO", "[main] org.apache.hadoop.mapred.MapTask", "Finished spill §{int:0-40}"),
    ("INFO", "[fetcher#§{int:1-5}] org.apache.hadoop.mapreduce.task.reduce.Fetcher", "fetcher#§{int:1-5} about to shuffle output of map §{attempt} decomp: §{int:1000-90000000} len: §{int:1000-90000000} to MEMORY"),
    ("INFO", "[main] org.apache.hadoop.mapreduce.task.reduce.MergeManagerImpl", "finalMerge called with §{int:0-20} in-memory map-outputs and §{int:0-5} on-disk map-outputs"),
    ("INFO", "[CommitterEvent Processor #§{int:0-4}] org.apache.hadoop.mapreduce.v2.app.commit.CommitterEventHandler", "Processing the event EventType: §{choice:JOB_SETUP|TASK_ABORT|JOB_COMMIT}"),
    ("INFO", "[main] org.apache.hadoop.mapred.Task", "Task '§{attempt}' done. Final counters: 0 errors, 0 warnings"),
    ("WARN", "[LeaseRenewer:msrabi@msra-sa-41:9000] org.apache.hadoop.hdfs.LeaseRenewer", "Failed to renew lease for [DFSClient_NONMAPREDUCE_§{int:100000000-2000000000}_1] for §{int:1-600} seconds.  Will retry shortly ..."),
    ("FATAL", "[IPC Server handler §{int:0-29} on §{port}] org.apache.hadoop.mapred.TaskAttemptListenerImpl", "Task: §{attempt} - exited : java.net.NoRouteToHostException: No Route to Host from  MININT-FNANLI5/127.0.0.1 to msra-sa-41:9000 failed on socket timeout exception"),
])


def h_spark(r, t, level, comp):
    return "%s %s %s: " % (t.strftime("%y/%m/%d %H:%M:%S"), level, comp)


SPARK = dict(start=dt.datetime(2017, 6, 9, 20, 10, 40, tzinfo=UTC), gap=2.0, digits=0,
             header=h_spark, templates=[
    ("INFO", "storage.BlockManager", "Found block rdd_§{int:0-60}_§{int:0-60} locally"),
    ("INFO", "storage.MemoryStore", "Block broadcast_§{int:0-60}_piece0 stored as bytes in memory (estimated size §{float:1-99-1} KB, free §{float:1-500-1} MB)"),
    ("INFO", "executor.Executor", "Running task §{float:0-40-1} in stage §{float:0-40-1} (TID §{int:0-9999})"),
    ("INFO", "executor.Executor", "Finished task §{float:0-40-1} in stage §{float:0-40-1} (TID §{int:0-9999}). §{int:800-3000} bytes result sent to driver"),
    ("INFO", "executor.CoarseGrainedExecutorBackend", "Got assigned task §{int:0-9999}"),
    ("INFO", "spark.CacheManager", "Partition rdd_§{int:0-60}_§{int:0-60} not found, computing it"),
    ("INFO", "broadcast.TorrentBroadcast", "Started reading broadcast variable §{int:0-60}"),
    ("INFO", "broadcast.TorrentBroadcast", "Reading broadcast variable §{int:0-60} took §{int:1-900} ms"),
    ("INFO", "storage.MemoryStore", "Block rdd_§{int:0-60}_§{int:0-60} stored as values in memory (estimated size §{float:1-99-1} KB, free §{float:1-500-1} MB)"),
    ("INFO", "executor.CoarseGrainedExecutorBackend", "Registered signal handlers for [TERM, HUP, INT]"),
    ("INFO", "spark.SecurityManager", "Changing view acls to: yarn,§{user}"),
    ("INFO", "spark.SecurityManager", "SecurityManager: authentication disabled; ui acls disabled; users with view permissions: Set(yarn, §{user}); users with modify permissions: Set(yarn, §{user})"),
    ("INFO", "util.Utils", "Successfully started service 'sparkExecutorActorSystem' on port §{port}."),
    ("INFO", "storage.DiskBlockManager", "Created local directory at /opt/hdfs/nodemanager/usercache/curi/appcache/§{appid}/blockmgr-§{uuid}"),
    ("INFO", "mapred.SparkHadoopMapRedUtil", "§{attempt}: Committed"),
    ("WARN", "storage.BlockManager", "Putting block rdd_§{int:0-60}_§{int:0-60} failed"),
    ("ERROR", "executor.CoarseGrainedExecutorBackend", "RECEIVED SIGNAL 15: SIGTERM"),
    ("WARN", "executor.CoarseGrainedExecutorBackend", "An unknown (mesos-slave-§{int:1-40}:§{port}) driver disconnected."),
    ("ERROR", "executor.Executor", "Exception in task §{float:0-40-1} in stage §{float:0-40-1} (TID §{int:0-9999})"),
    ("INFO", "output.FileOutputCommitter", "Saved output of task '§{attempt}' to hdfs://10.10.34.11:9000/pjhe/test/§{int:1-9}/_temporary/0/task_§{int:100000-999999}_§{int:1000-9999}_m_§{int:100000-999999}"),
    ("INFO", "executor.Executor", "Executor is trying to kill task §{float:0-40-1} in stage §{float:0-40-1} (TID §{int:0-9999})"),
])


def h_zk(r, t, level, comp):
    return "%s,%03d - %-5s [%s] - " % (t.strftime("%Y-%m-%d %H:%M:%S"), t.microsecond // 1000, level, comp)


ZOOKEEPER = dict(start=dt.datetime(2015, 7, 29, 17, 41, 44, 747000, tzinfo=UTC), gap=40.0, digits=3,
                 header=h_zk, templates=[
    ("INFO", "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxnFactory@197", "Accepted socket connection from /§{ip:private}:§{port}"),
    ("INFO", "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxn@1001", "Closed socket connection for client /§{ip:private}:§{port} which had sessionid §{sid}"),
    ("WARN", "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxn@349", "caught end of stream exception"),
    ("INFO", "CommitProcessor:§{int:1-3}:ZooKeeperServer@595", "Established session §{sid} with negotiated timeout §{int:10000-40000} for client /§{ip:private}:§{port}"),
    ("INFO", "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:ZooKeeperServer@839", "Client attempting to establish new session at /§{ip:private}:§{port}"),
    ("WARN", "SendWorker:§{int:1-3}:QuorumCnxManager$SendWorker@679", "Interrupted while waiting for message on queue"),
    ("WARN", "RecvWorker:§{int:1-3}:QuorumCnxManager$RecvWorker@762", "Connection broken for id §{int:1-3}, my id = §{int:1-3}, error = "),
    ("INFO", "QuorumPeer[myid=§{int:1-3}]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774", "Notification time out: §{int:200-60000}"),
    ("WARN", "SendWorker:§{int:1-3}:QuorumCnxManager$SendWorker@688", "Send worker leaving thread"),
    ("INFO", "ProcessThread(sid:§{int:1-3} cport:-1)::PrepRequestProcessor@476", "Processed session termination for sessionid: §{sid}"),
    ("WARN", "QuorumPeer[myid=§{int:1-3}]/0:0:0:0:0:0:0:0:2181:Follower@118", "Got zxid §{sid} expected 0x1"),
    ("INFO", "QuorumPeer[myid=§{int:1-3}]/0:0:0:0:0:0:0:0:2181:QuorumPeer@670", "§{choice:LOOKING|FOLLOWING|LEADING}"),
    ("ERROR", "CommitProcessor:§{int:1-3}:NIOServerCnxn@180", "Unexpected Exception: java.nio.channels.CancelledKeyException"),
    ("WARN", "WorkerSender[myid=§{int:1-3}]:QuorumCnxManager@368", "Cannot open channel to §{int:1-3} at election address /§{ip:private}:3888"),
    ("INFO", "SessionTracker:ZooKeeperServer@325", "Expiring session §{sid}, timeout of §{int:10000-40000}ms exceeded"),
    ("INFO", "QuorumPeer[myid=§{int:1-3}]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@542", "New election. My id =  §{int:1-3}, proposed zxid=§{sid}"),
    ("INFO", "WorkerReceiver[myid=§{int:1-3}]:FastLeaderElection@542", "Notification: §{int:1-3} (n.leader), §{sid} (n.zxid), §{int:1-9} (n.round), §{choice:LOOKING|FOLLOWING|LEADING} (n.state), §{int:1-3} (n.sid), §{sid} (n.peerEPoch), §{choice:LOOKING|FOLLOWING|LEADING} (my state)"),
    ("ERROR", "LearnerHandler-/§{ip:private}:§{port}:LearnerHandler@562", "Unexpected exception causing shutdown while sock still open"),
    ("INFO", "QuorumPeer[myid=§{int:1-3}]/0:0:0:0:0:0:0:0:2181:Environment@100", "Server environment:java.io.tmpdir=/tmp"),
    ("WARN", "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxn@354", "Exception causing close of session §{sid} due to java.io.IOException: ZooKeeperServer not running"),
])


def h_openstack(r, t, level, comp):
    logger = comp.split(" ")[1]  # comp: "<service> <logger>"
    if logger.startswith(("nova.compute.resource_tracker", "nova.virt.libvirt.imagecache")):
        req = "[req-%s - - - - -]" % v_uuid(r, None)  # periodic tasks run without a user
    else:
        req = "[req-%s %s %s - - -]" % (v_uuid(r, None), v_hex(r, "32"), v_hex(r, "32"))
    return "%s.%03d %d %s %s %s " % (
        t.strftime("%Y-%m-%d %H:%M:%S"), t.microsecond // 1000, r.choice([25746, 2931, 2932, 25797]),
        level, logger, req)


OPENSTACK = dict(start=dt.datetime(2017, 5, 16, 0, 0, 0, 8000, tzinfo=UTC), gap=1.5, digits=3,
                 header=h_openstack, templates=[
    ("INFO", "nova-api nova.osapi_compute.wsgi.server", "§{ip:private} \"GET /v2/§{hex:32}/servers/detail HTTP/1.1\" status: 200 len: §{int:1500-2000} time: §{float:0-1-7}"),
    ("INFO", "nova-api nova.metadata.wsgi.server", "§{ip:private},§{ip:private} \"GET /openstack/2013-10-17/meta_data.json HTTP/1.1\" status: 200 len: §{int:900-1000} time: §{float:0-1-7}"),
    ("INFO", "nova-compute nova.compute.manager", "[instance: §{uuid}] VM §{choice:Started|Stopped|Paused|Resumed} (Lifecycle Event)"),
    ("INFO", "nova-compute nova.compute.claims", "[instance: §{uuid}] Total memory: 64172 MB, used: §{float:500-30000-2} MB"),
    ("INFO", "nova-compute nova.compute.claims", "[instance: §{uuid}] Claim successful"),
    ("INFO", "nova-compute nova.virt.libvirt.driver", "[instance: §{uuid}] Creating image"),
    ("INFO", "nova-compute nova.compute.manager", "[instance: §{uuid}] Took §{float:0-30-2} seconds to spawn the instance on the hypervisor."),
    ("INFO", "nova-compute nova.compute.manager", "[instance: §{uuid}] Took §{float:0-30-2} seconds to build instance."),
    ("INFO", "nova-compute nova.compute.resource_tracker", "Final resource view: name=cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us phys_ram=64172MB used_ram=§{int:512-30000}MB phys_disk=15GB used_disk=§{int:0-15}GB total_vcpus=16 used_vcpus=§{int:0-16} pci_stats=[]"),
    ("INFO", "nova-compute nova.compute.resource_tracker", "Auditing locally available compute resources for node cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us"),
    ("INFO", "nova-compute nova.virt.libvirt.imagecache", "image §{uuid} at (/var/lib/nova/instances/_base/§{hex:40}): checking"),
    ("INFO", "nova-compute nova.virt.libvirt.imagecache", "Active base files: /var/lib/nova/instances/_base/§{hex:40}"),
    ("WARNING", "nova-compute nova.compute.manager", "[instance: §{uuid}] Received unexpected event network-vif-plugged-§{uuid} for instance"),
    ("INFO", "nova-compute nova.compute.manager", "[instance: §{uuid}] Terminating instance"),
    ("INFO", "nova-compute nova.virt.libvirt.driver", "[instance: §{uuid}] Deleting instance files /var/lib/nova/instances/§{uuid}_del"),
    ("ERROR", "nova-compute nova.compute.manager", "[instance: §{uuid}] Instance failed to spawn"),
    ("INFO", "nova-api nova.osapi_compute.wsgi.server", "§{ip:private} \"POST /v2/§{hex:32}/os-server-external-events HTTP/1.1\" status: 200 len: 380 time: §{float:0-1-7}"),
    ("WARNING", "nova-compute nova.virt.libvirt.imagecache", "Unknown base file: /var/lib/nova/instances/_base/§{hex:40}"),
    ("INFO", "nova-compute nova.compute.manager", "[instance: §{uuid}] During sync_power_state the instance has a pending task (spawning). Skip."),
])


def h_bgl(r, t, level, comp):
    node = v_bglnode(r, None)
    flag, comp = comp.split(" ") if " " in comp else ("-", comp)  # "<alert flag> <component>"
    return "%s %d %s %s %s %s RAS %s %s " % (
        flag, int(t.timestamp()), t.strftime("%Y.%m.%d"), node, t.strftime("%Y-%m-%d-%H.%M.%S.%f"),
        node, comp, level)


BGL = dict(start=dt.datetime(2005, 6, 3, 15, 42, 50, 675872, tzinfo=UTC), gap=90.0, digits=6,
           header=h_bgl, templates=[
    ("INFO", "KERNEL", "instruction cache parity error corrected"),
    ("INFO", "KERNEL", "generating core.§{int:1-9999}"),
    ("INFO", "KERNEL", "§{int:1-9} double-hummer alignment exceptions"),
    ("INFO", "KERNEL", "CE sym §{int:0-31}, at §{sid}, mask §{sid}"),
    ("FATAL", "KERNDTLB KERNEL", "data TLB error interrupt"),
    ("FATAL", "APPREAD APP", "ciod: failed to read message prefix on control stream (CioStream socket to §{ip:private}:§{port}"),
    ("INFO", "KERNEL", "total of §{int:1-30} ddr error(s) detected and corrected"),
    ("FATAL", "KERNSTOR KERNEL", "data storage interrupt"),
    ("ERROR", "KERNTERM KERNEL", "rts: kernel terminated for reason §{int:1000-1010}"),
    ("INFO", "KERNEL", "ddr: activating redundant bit steering: rank=0 symbol=§{int:0-31}"),
    ("WARNING", "KERNEL", "mailbox: §{choice:ciod|idoproxy} ready"),
    ("FATAL", "KERNMC KERNEL", "machine check interrupt (bit=0x1d): L2 dcache unit data parity error"),
    ("SEVERE", "MMCS", "idoproxydb hit ASSERT condition: ASSERT expression=0 Source file=idotransportmgr.cpp Source line=§{int:1000-1200} Function=int IdoTransportMgr::SendPacket(IdoUdpMgr*, BglCtlPavTrace*)"),
    ("FAILURE", "MONILL MONITOR", "monitor caught java.lang.IllegalStateException: while executing CONTROL Operation"),
    ("ERROR", "DISCOVERY", "Node card VPD check: §{bglnode} node in processor card slot J§{int:2-18} do not match. VPD ecid §{hex:32}, found §{hex:32}"),
    ("INFO", "KERNEL", "iar §{hex:8} dear §{hex:8}"),
    ("FATAL", "APP", "ciod: Error loading /g/g§{int:10-99}/§{user}/a.out: invalid or missing program image, No such file or directory"),
])


def h_hpc(r, t, level, comp):
    node, kind, state = comp.split(" ")
    if node == "node":
        node = "node-%d" % r.randint(1, 300)
    return "%d %s %s %s %d 1 " % (r.randint(1, 470000), node, kind, state, int(t.timestamp()))


HPC = dict(start=dt.datetime(2004, 2, 26, 13, 32, 22, tzinfo=UTC), gap=300.0, digits=0,
           header=h_hpc, templates=[
    (None, "node unix.hw state_change.unavailable", "Component State Change: Component \\042§{choice:alt0|alt1|scsi0|pci0}\\042 is in the unavailable state (HWID=§{int:1000-5000})"),
    (None, "node node.status running", "running running"),
    (None, "gige7 switch_module error", "Link error on broadcast tree Interconnect-§{int:0-9}T00:00:§{int:0-9}:§{int:0-9}"),
    (None, "node node.status boot", "boot (command §{int:1000-4000})"),
    (None, "node node.status halt", "halt (command §{int:1000-4000}) Error: Couldn't connect to console"),
    (None, "node action start", "Command has completed successfully"),
    (None, "node node.status not_responding", "Not responding"),
    (None, "node unix.hw net.niff.down", "NIFF: node node-§{int:1-300} detected a failed network connection on network §{ip:private} via interface alt0"),
    (None, "node unix.hw net.niff.up", "NIFF: node node-§{int:1-300} has detected an available network connection on network §{ip:private} via interface alt0"),
    (None, "node node.status configured", "configured out"),
    (None, "node node.status error", "ClusterFileSystem: There is no server for ServerFileSystem domain storage§{int:100-999}"),
    (None, "node node.status pbs_mom", "PBS_MOM: Bad file descriptor (9) in tm_request, job §{int:10000-99999}.node-1 not running"),
    (None, "node unix.hw temperature.high", "Temperature (§{int:60-99}C) exceeds warning threshold"),
    (None, "node action start", "Command §{int:1000-9999} failed: boot"),
])


def h_thunderbird(r, t, level, comp):
    node = "%s%d" % (r.choice(["dn", "cn", "bn", "an"]), r.randint(1, 999))
    flag = "-" if not comp.startswith("!") else comp[1:comp.index(" ")]
    prog = comp if not comp.startswith("!") else comp[comp.index(" ") + 1:]
    prog = prog.replace("PID", str(r.randint(100, 30000)))
    return "%s %d %s %s %s %s/%s %s: " % (flag, int(t.timestamp()), t.strftime("%Y.%m.%d"), node, bsd(t),
                                           node, node, prog)


THUNDERBIRD = dict(start=dt.datetime(2005, 11, 9, 12, 1, 1, tzinfo=UTC), gap=25.0, digits=0,
                   header=h_thunderbird, templates=[
    (None, "crond(pam_unix)[PID]", "session opened for user §{user} by (uid=0)"),
    (None, "crond(pam_unix)[PID]", "session closed for user §{user}"),
    (None, "crond[PID]", "(§{user}) CMD (run-parts /etc/cron.hourly)"),
    (None, "sshd[PID]", "Accepted publickey for §{user} from §{ip:private} port §{port} ssh2"),
    (None, "kernel", "Losing some ticks... checking if CPU frequency changed."),
    (None, "ntpd[PID]", "synchronized to §{ip:private}, stratum §{int:1-4}"),
    (None, "!VAPI kernel", "[KERNEL_IB][ib_mad_dispatch][/mnt_projects/sysapps/src/ib/topspin/topspin-src-3.2.0-16/ib/ts_api_ng/mad/obj_host_amd64_rhel4/ts_ib_mad/mad_filter.c:§{int:50-150}]Received packet on QP §{int:0-3}"),
    (None, "xinetd[PID]", "START: rsync pid=§{int:100-30000} from=§{ip:private}"),
    (None, "xinetd[PID]", "EXIT: rsync status=0 pid=§{int:100-30000} duration=§{int:0-60}(sec)"),
    (None, "kernel", "e1000: eth§{int:0-1}: e1000_watchdog: NIC Link is Up 1000 Mbps Full Duplex"),
    (None, "!ECC kernel", "EDAC k8 MC0: general bus error: participating processor(local node response), time-out(no timeout) memory transaction type(generic read), mem or i/o(mem access), cache level(generic)"),
    (None, "pbs_mom", "Connection refused (111) in open_demux, open_demux: connect §{ip:private}:§{port}"),
    (None, "sshd[PID]", "Connection closed by §{ip:private}"),
    (None, "kernel", "warning: many lost ticks. Your time source seems to be instable or some driver is hogging interupts"),
    (None, "postfix/postdrop[PID]", "warning: unable to look up public/pickup: No such file or directory"),
    (None, "dhcpd", "DHCPREQUEST for §{ip:private} from §{mac} via eth1"),
    (None, "dhcpd", "DHCPACK on §{ip:private} to §{mac} via eth1"),
    (None, "!PBS_CHK pbs_mom", "task_check, cannot tm_reply to §{int:10000-99999}.tbird-admin1 task 1"),
])


def h_windows(r, t, level, comp):
    return "%s, %-22s%-7s" % (t.strftime("%Y-%m-%d %H:%M:%S"), level, comp)


WINDOWS = dict(start=dt.datetime(2016, 9, 28, 4, 30, 30, tzinfo=UTC), gap=3.0, digits=0,
               header=h_windows, templates=[
    ("Info", "CBS", "SQM: Initializing online with Windows opt-in: False"),
    ("Info", "CBS", "SQM: Cleaning up report files older than 10 days."),
    ("Info", "CBS", "SQM: Requesting upload of all unsent reports."),
    ("Info", "CBS", "SQM: Failed to start upload with file pattern: C:\\Windows\\servicing\\sqm\\*_std.sqm, flags: 0x2 [HRESULT = 0x80004005 - E_FAIL]"),
    ("Info", "CBS", "Session: §{int:30000000-31000000}_§{int:1000000000-4000000000} initialized by client WindowsUpdateAgent."),
    ("Info", "CSI", "§{hex:8}@2016/9/28:04:30:31.455 WcpInitialize (wcp.dll version 0.0.0.6) called (stack @0x§{hex:11} @0x§{hex:11} @0x§{hex:6} @0x§{hex:6} @0x§{hex:6} @0x§{hex:11})"),
    ("Info", "CBS", "Loaded Servicing Stack v§{version} with Core: C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_§{version}_none_§{hex:16}\\cbscore.dll"),
    ("Info", "CBS", "Read out cached package applicability for package: Package_for_KB§{int:2000000-3999999}~31bf3856ad364e35~amd64~~6.1.1.§{int:0-9}, ApplicableState: §{int:0-112}, CurrentState:§{int:0-112}"),
    ("Info", "CBS", "Warning: Unrecognized packageExtended attribute."),
    ("Info", "CBS", "Expecting attribute name [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]"),
    ("Info", "CBS", "Failed to get next element [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]"),
    ("Info", "CBS", "Exec: Processing complete.  Session: §{int:30000000-31000000}_§{int:1000000000-4000000000}, Package: Package_for_KB§{int:2000000-3999999}~31bf3856ad364e35~amd64~~6.1.1.§{int:0-9}, Identifier: KB§{int:2000000-3999999} [HRESULT = 0x00000000 - S_OK]"),
    ("Info", "CBS", "Ending TrustedInstaller finalization."),
    ("Info", "CBS", "Starting TrustedInstaller finalization."),
    ("Info", "CBS", "TI: --- Initializing Trusted Installer ---"),
    ("Info", "CBS", "NonStart: Checking to ensure startup processing was not required."),
    ("Info", "CBS", "Scavenge: Starts"),
    ("Warning", "CBS", "Unable to load the package: Package_for_KB§{int:2000000-3999999}~31bf3856ad364e35~amd64~~6.1.1.§{int:0-9} [HRESULT = 0x800f0805 - CBS_E_INVALID_PACKAGE]"),
    ("Error", "CSI", "§{hex:8} (F) STATUS_SXS_ASSEMBLY_MISSING #§{int:100000-999999}# from Windows::ServicingAPI::CCSITransaction::ICSITransaction_PinDeployment(Flags = 0, a = §{hex:40}, version 0.0.0.0, pA = PROCESSOR_ARCHITECTURE_AMD64 (9), Culture neutral, VersionScope = 1 nonSxS, PublicKeyToken = {l:8 b:31bf3856ad364e35}, Type neutral, TypeName neutral, PublicKey neutral, cb = (null), s = (null), rid = 'Package_for_KB§{int:2000000-3999999}~31bf3856ad364e35~amd64~~6.1.1.0', rah = (null), manpath = (null), catpath = (null), ed = 0, disp = 0)[gle=0x80073701]"),
    ("Info", "CBS", "Session: §{int:30000000-31000000}_§{int:1000000000-4000000000} finalized. Reboot required: §{choice:no|yes} [HRESULT = 0x00000000 - S_OK]"),
])


def h_linux(r, t, level, comp):
    return "%s combo %s: " % (bsd(t), comp.replace("PID", str(r.randint(1000, 30000))))


# Linux syslog spans the New Year (2025-12-31 -> 2026-01-01): the deliberate rollover case.
LINUX = dict(start=dt.datetime(2025, 12, 31, 14, 0, 0, tzinfo=UTC), gap=90.0, digits=0,
             header=h_linux, templates=[
    (None, "sshd(pam_unix)[PID]", "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=§{ip}"),
    (None, "sshd(pam_unix)[PID]", "check pass; user unknown"),
    (None, "sshd(pam_unix)[PID]", "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=§{ip}  user=§{user}"),
    (None, "ftpd[PID]", "connection from §{ip} (§{host}) at §{choice:Sat|Sun|Mon} §{choice:Dec|Jan} §{int:1-31} §{hms}:§{int:10-59} §{choice:2025|2026}"),
    (None, "su(pam_unix)[PID]", "session opened for user §{user} by (uid=0)"),
    (None, "su(pam_unix)[PID]", "session closed for user §{user}"),
    (None, "logrotate", "ALERT exited abnormally with [1]"),
    (None, "kernel", "audit(§{int:1100000000-1200000000}.§{int:100-999}:0): initialized"),
    (None, "cups", "cupsd shutdown succeeded"),
    (None, "cups", "cupsd startup succeeded"),
    (None, "syslogd 1.4.1", "restart."),
    (None, "gdm(pam_unix)[PID]", "authentication failure; logname= uid=0 euid=0 tty=:0 ruser= rhost="),
    (None, "kernel", "Memory: §{int:100000-999999}k/§{int:100000-999999}k available (§{int:1000-9999}k kernel code, §{int:1000-99999}k reserved, §{int:100-9999}k data, §{int:100-999}k init, 0k highmem)"),
    (None, "xinetd[PID]", "warning: can't get client address: Transport endpoint is not connected"),
    (None, "kernel", "hda: drive_cmd: status=0x51 { DriveReady SeekComplete Error }"),
    (None, "named[PID]", "lame server resolving '§{host}' (in '§{choice:com|net|org}'?): §{ip}#53"),
    (None, "rpc.statd[PID]", "Version 1.0.6 Starting"),
    (None, "kernel", "0 errors, §{int:1-9} warnings in pci_fixup"),
])


def h_mac(r, t, level, comp):
    return "%s calvisitor-10-105-%d-%d %s: " % (bsd(t), r.randint(160, 163), r.randint(1, 254),
                                                  comp.replace("PID", str(r.randint(30, 40000))))


MAC = dict(start=dt.datetime(2017, 7, 1, 9, 0, 55, tzinfo=UTC), gap=60.0, digits=0,
           header=h_mac, templates=[
    (None, "kernel[0]", "ARPT: §{float:600000-700000-6}: wl0: wl_update_tcpkeep_seq: Original Seq: §{int:100000000-4000000000}, Ack: §{int:100000000-4000000000}, Win size: §{int:1000-9999}"),
    (None, "kernel[0]", "IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet for route = 0x0 port = §{int:1-12} unplug = §{int:0-1}"),
    (None, "kernel[0]", "AppleCamIn::systemWakeCall - messageType = 0x§{hex:8}"),
    (None, "kernel[0]", "Wake reason: §{choice:RTC (Alarm)|EC.LidOpen (User)|ARPT (Network)|XHC1}"),
    (None, "com.apple.CDScheduler[PID]", "Thermal pressure state: §{int:0-2} Memory pressure state: §{int:0-2}"),
    (None, "QQ[PID]", "FA||Url||taskID[§{int:2000000000-2100000000}] dealloc"),
    (None, "kernel[0]", "en0: channel changed to §{int:1-161}"),
    (None, "symptomsd[PID]", "__73-[NetworkAnalyticsEngine observeValueForKeyPath:ofObject:change:context:]_block_invoke unexpected switch value §{int:1-3}"),
    (None, "mDNSResponder[PID]", "mDNS_DeregisterInterface: Frequent transitions for interface en0 (§{ip:private})"),
    (None, "com.apple.cts[PID]", "com.apple.suggestions.harvest: scheduler_evaluate_activity told me to run this job; however, but the start time isn't for §{int:100-99999} seconds.  Ignoring."),
    (None, "corecaptured[PID]", "CCFile::captureLog Received Capture notice id: §{float:1498000000-1499000000-6}, reason = AssocFail:sts:§{int:1-20}_rsn:0"),
    (None, "sandboxd[PID]", "Chrome Helper(§{int:30-40000}) deny network-outbound /private/var/run/mDNSResponder"),
    (None, "kernel[0]", "Sandbox: com.apple.Addres(§{int:30-40000}) deny(1) network-outbound /private/var/run/mDNSResponder"),
    (None, "WindowServer[PID]", "CGXDisplayDidWakeNotification [§{int:100000000000000-999999999999999}]: posting kCGSDisplayDidWake"),
    (None, "Google Chrome Helper[PID]", "Couldn't set selectedTextBackgroundColor from default ()"),
    (None, "kernel[0]", "Previous sleep cause: §{int:1-5}"),
    (None, "networkd[PID]", "nw_nat64_post_new_ifstate successfully changed NAT64 ifstate from §{sid} to §{sid}"),
    (None, "UserEventAgent[PID]", "Captive: [CNInfoNetworkActive:1748] en0: SSID 'CalVisitor' making interface primary (cache indicates network not captive)"),
    (None, "kernel[0]", "IO80211AWDLPeerManager::setAwdlSuspendedMode() Suspending AWDL, enterQuietMode(true)"),
    (None, "secd[PID]", "SOSAccountThisDeviceCanSyncWithCircle sync with device failure: Error Domain=com.apple.security.sos.error Code=1035 \"Account identity not set\" UserInfo={NSDescription=Account identity not set}"),
])


def h_android(r, t, level, comp):
    pid = r.choice([1702, 2227, 632, 1793, 30341])
    return "%s.%03d %5d %5d %s %s: " % (t.strftime("%m-%d %H:%M:%S"), t.microsecond // 1000, pid,
                                        r.choice([pid, r.randint(1000, 32000)]), level, comp)


ANDROID = dict(start=dt.datetime(2017, 3, 17, 16, 13, 38, 811000, tzinfo=UTC), gap=0.4, digits=3,
               header=h_android, templates=[
    ("D", "PowerManagerService", "acquire lock=§{int:1000000-999999999}, flags=0x1, tag=\"View Lock\", name=com.android.systemui, ws=null, uid=§{int:1000-10100}, pid=§{int:1000-32000}"),
    ("D", "PowerManagerService", "release:lock=§{int:1000000-999999999}, flg=0x0, tag=\"RILJ_ACK_WL\", name=com.android.phone\", ws=null, uid=1001, pid=§{int:1000-32000}"),
    ("V", "WindowManager", "Skipping AppWindowToken{§{hex:7} token=Token{§{hex:7} ActivityRecord{§{hex:7} u0 §{pkg}/.MainActivity t§{int:100-999}}}} -- going to hide"),
    ("I", "DisplayPowerController", "Blocking screen on until initial contents have been drawn."),
    ("D", "DisplayPowerController", "Animating brightness: target=§{int:0-255}, rate=§{int:0-400}"),
    ("D", "WindowManager", "printFreezingDisplayLogsopening app wtoken = AppWindowToken{§{hex:7} token=Token{§{hex:7} ActivityRecord{§{hex:7} u0 §{pkg}/.MainActivity t§{int:100-999}}}}, allDrawn= false, startingDisplayed =  false, startingMoved =  false, isRelaunching =  false"),
    ("I", "ActivityManager", "Start proc §{int:1000-32000}:§{pkg}/u0a§{int:10-200} for service §{pkg}/.PushService"),
    ("E", "ActivityManager", "Killing §{int:1000-32000}:§{pkg}/u0a§{int:10-200} (adj §{int:0-999}): empty #§{int:17-40}"),
    ("W", "ActivityManager", "Unable to start service Intent { act=com.huawei.android.push.intent.REGISTER pkg=§{pkg} } U=0: not found"),
    ("I", "PhoneStatusBar", "setSystemUiVisibility vis=§{hex:7} mask=ffffffff oldVal=§{hex:7} newVal=§{hex:7} diff=§{hex:7}"),
    ("D", "PhoneStatusBar", "disable<e i a s b h r c s > disable2<q i n >"),
    ("I", "chatty", "uid=1000(system) Binder:1702_§{int:1-9} expire §{int:1-20} lines"),
    ("W", "System.err", "java.net.SocketTimeoutException: failed to connect to /§{ip}:§{port} after 10000ms"),
    ("E", "AndroidRuntime", "FATAL EXCEPTION: main"),
    ("D", "wpa_supplicant", "wlan0: Control interface command 'SIGNAL_POLL'"),
    ("V", "AlarmManager", "remove PendingIntent] PendingIntent{§{hex:7}: PendingIntentRecord{§{hex:7} §{pkg} broadcastIntent}}"),
    ("I", "HwBatteryService", "update battery info, level = §{int:1-100}, temperature = §{int:200-450}"),
    ("W", "InputMethodManagerService", "Window already focused, ignoring focus gain of: com.android.internal.view.IInputMethodClient$Stub$Proxy@§{hex:7} attribute=null, token = android.os.BinderProxy@§{hex:7}"),
    ("F", "libc", "Fatal signal 11 (SIGSEGV), code 1, fault addr 0x§{hex:8} in tid §{int:1000-32000} (RenderThread)"),
    ("D", "TelephonyManager", "getDeviceId: error reading id: 0 errors"),
    ("I", "WindowManager", "Screen frozen for +§{int:1-999}ms due to AppWindowToken{§{hex:7} token=Token{§{hex:7} ActivityRecord{§{hex:7} u0 §{pkg}/.MainActivity t§{int:100-999}}}}"),
])


def h_health(r, t, level, comp):
    return "%s:%03d|%s|%d|" % (t.strftime("%Y%m%d-%H:%M:%S"), t.microsecond // 1000, comp, 30002312)


HEALTHAPP = dict(start=dt.datetime(2017, 12, 23, 22, 15, 29, 606000, tzinfo=UTC), gap=8.0, digits=3,
                 header=h_health, templates=[
    (None, "Step_LSC", "onStandStepChanged §{int:1000-9999}"),
    (None, "Step_LSC", "onExtend:§{int:1514000000000-1515000000000} §{int:0-30} §{int:0-30} §{int:0-3}"),
    (None, "Step_SPUtils", "getTodayTotalDetailSteps = §{int:1514000000000-1515000000000}##§{int:1000-9999}##§{int:100000-999999}##§{int:1000-9999}##§{int:10000-99999}##§{int:10000000000-99999999999}"),
    (None, "Step_StandReportReceiver", "onReceive action: android.intent.action.SCREEN_ON"),
    (None, "Step_LSC", "processHandleBroadcastAction action:android.intent.action.SCREEN_ON"),
    (None, "Step_StandStepCounter", "flush sensor data"),
    (None, "Step_ExtSDM", "calculateCaloriesWithCache totalCalories=§{int:100000-200000}"),
    (None, "Step_ExtSDM", "calculateAltitudeWithCache totalAltitude=§{int:0-300}"),
    (None, "Step_SPUtils", "setTodayTotalDetailSteps=§{int:1514000000000-1515000000000}##§{int:1000-9999}##§{int:100000-999999}##§{int:1000-9999}##§{int:10000-99999}##§{int:10000000000-99999999999}"),
    (None, "Step_LSC", "REPORT : §{int:1000-9999} §{int:1000-9999} §{int:100000-200000} §{int:100-300}"),
    (None, "Step_NotificationUtil", "getNotification()"),
    (None, "HiH_HiSyncControl", "uploadStaticsToDB failed message=true"),
    (None, "Step_ScreenUtil", "screen status unknown,think screen on"),
    (None, "HiH_DataStatManager", "onReceive: error 0 while syncing, will retry in §{int:1-60} s"),
    (None, "Step_LSC", "onReceive action: android.intent.action.TIME_TICK"),
])


def h_apache(r, t, level, comp):
    if level is None:
        local = t.astimezone(dt.timezone(dt.timedelta(hours=1)))
        return "%s - - [%s] " % (v_ip(r, None), local.strftime("%d/%b/%Y:%H:%M:%S +0100"))
    return "[%s %s %02d %s %d] [%s] " % (DAYS[t.weekday()], MONTHS[t.month - 1], t.day,
                                          t.strftime("%H:%M:%S"), t.year, level)


APACHE = dict(start=dt.datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC), gap=30.0, digits=0,
              header=h_apache, templates=[
    ("notice", None, "jk2_init() Found child §{int:1000-9999} in scoreboard slot §{int:0-12}"),
    ("notice", None, "workerEnv.init() ok /etc/httpd/conf/workers2.properties"),
    ("error", None, "mod_jk child workerEnv in error state §{int:6-9}"),
    ("error", None, "[client §{ip}] Directory index forbidden by rule: /var/www/html/"),
    ("error", None, "jk2_init() Can't find child §{int:1000-9999} in scoreboard"),
    ("error", None, "mod_jk child init §{int:1-3} -2"),
    ("notice", None, "Apache/2.0.49 (Fedora) configured -- resuming normal operations"),
    ("notice", None, "Digest: generating secret for digest authentication ..."),
    ("error", None, "[client §{ip}] File does not exist: /var/www/html/§{choice:scripts|cgi-bin|sumthin|MSADC|_vti_bin}"),
    ("warn", None, "child process §{int:1000-9999} still did not exit, sending a SIGTERM"),
    ("notice", None, "caught SIGTERM, shutting down"),
    ("error", None, "[client §{ip}] script not found or unable to stat: /var/www/cgi-bin/awstats.pl"),
    (None, None, "\"GET §{url} HTTP/1.1\" §{choice:200|304} §{int:200-90000} \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:38.0) Gecko/20100101 Firefox/38.0\""),
    (None, None, "\"GET /error/§{choice:404|500}.html HTTP/1.0\" 404 §{int:200-1500} \"-\" \"-\""),
    ("crit", None, "(2)No such file or directory: could not open mime types config file /etc/httpd/conf/mime.types."),
    ("emerg", None, "(98)Address already in use: make_sock: could not bind to address 0.0.0.0:80"),
])


def h_openssh(r, t, level, comp):
    return "%s LabSZ sshd[%d]: " % (bsd(t), r.randint(20000, 30000))


OPENSSH = dict(start=dt.datetime(2025, 12, 10, 6, 55, 46, tzinfo=UTC), gap=40.0, digits=0,
               header=h_openssh, templates=[
    (None, None, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=§{ip}  user=§{user}"),
    (None, None, "Failed password for §{user} from §{ip} port §{port} ssh2"),
    (None, None, "Received disconnect from §{ip}: 11: Bye Bye [preauth]"),
    (None, None, "Failed password for invalid user §{user} from §{ip} port §{port} ssh2"),
    (None, None, "Invalid user §{user} from §{ip}"),
    (None, None, "input_userauth_request: invalid user §{user} [preauth]"),
    (None, None, "pam_unix(sshd:auth): check pass; user unknown"),
    (None, None, "reverse mapping checking getaddrinfo for §{host} [§{ip}] failed - POSSIBLE BREAK-IN ATTEMPT!"),
    (None, None, "Connection closed by §{ip} [preauth]"),
    (None, None, "message repeated §{int:2-5} times: [ Failed password for §{user} from §{ip} port §{port} ssh2]"),
    (None, None, "PAM §{int:1-5} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=§{ip}  user=§{user}"),
    (None, None, "Disconnecting: Too many authentication failures for §{user} [preauth]"),
    (None, None, "error: Received disconnect from §{ip}: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]"),
    (None, None, "Accepted password for §{user} from §{ip} port §{port} ssh2"),
    (None, None, "pam_unix(sshd:session): session opened for user §{user} by (uid=0)"),
    (None, None, "fatal: Read from socket failed: Connection reset by peer [preauth]"),
    (None, None, "Did not receive identification string from §{ip}"),
    (None, None, "Bad protocol version identification '§{choice:GET / HTTP/1.1|SSH-1.5-Nmap|\\x16\\x03\\x01}' from §{ip} port §{port}"),
])


def h_proxifier(r, t, level, comp):
    return "[%s] %s - " % (t.strftime("%m.%d %H:%M:%S"), comp)


PROXIFIER = dict(start=dt.datetime(2016, 10, 30, 16, 49, 6, tzinfo=UTC), gap=2.0, digits=0,
                 header=h_proxifier, templates=[
    (None, "chrome.exe", "§{choice:play.google.com:443|www.google.com:443|clients4.google.com:443|www.youtube.com:443} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    (None, "chrome.exe", "§{choice:play.google.com:443|www.google.com:443|clients4.google.com:443|www.youtube.com:443} close, §{int:0-99999} bytes (§{kb}) sent, §{int:0-99999} bytes (§{kb}) received, lifetime §{choice:<1 sec|00:01|00:12|02:37}"),
    (None, "Dropbox.exe", "§{hostport:443} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    (None, "Dropbox.exe", "§{hostport:443} close, §{int:0-99999} bytes (§{kb}) sent, §{int:0-99999} bytes (§{kb}) received, lifetime §{hms}"),
    (None, "WeChat.exe", "§{ipport:80} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    (None, "WeChat.exe", "§{ipport:80} error : Could not connect through proxy proxy.cse.cuhk.edu.hk:5070 - Proxy server cannot establish a connection with the target, status code 403"),
    (None, "SogouCloud.exe", "§{ipport:80} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    (None, "chrome.exe", "§{choice:play.google.com:443|www.google.com:443} error : A connection request was canceled before the completion."),
    (None, "svchost.exe", "§{ipport:80} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    (None, "qqlive.exe", "§{ipport:8080} close, 0 bytes sent, 0 bytes received, lifetime <1 sec"),
    (None, "Dropbox.exe", "§{hostport:443} error : Could not connect to proxy proxy.cse.cuhk.edu.hk:5070 - connection attempt failed with error 10061"),
    (None, "chrome.exe", "proxy.cse.cuhk.edu.hk:5070 error : Could not resolve proxy.cse.cuhk.edu.hk error 11001"),
    (None, "svchost.exe", "§{hostport:80} open directly"),
    (None, "git-remote-https.exe", "§{hostport:443} open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    (None, "putty.exe", "§{ipport:22} close, §{int:0-99999} bytes (§{kb}) sent, §{int:0-99999} bytes (§{kb}) received, lifetime §{hms}"),
])


def h_kubelet(r, t, level, comp):
    return "%s%s %s.%06d %7d %s:%d] " % (level, t.strftime("%m%d"), t.strftime("%H:%M:%S"),
                                          t.microsecond, 2151, comp, r.choice([131, 218, 1045, 2273]))


# klog (Kubernetes) lines: `Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg` — no year, no zone.
KUBELET = dict(start=dt.datetime(2026, 11, 30, 6, 12, 3, 128477, tzinfo=UTC), gap=7.0, digits=6, lines=200,
               header=h_kubelet, templates=[
    ("I", "kubelet.go", "\"SyncLoop (PLEG): event for pod\" pod=\"default/web-§{hex:10}-§{hex:5}\" event={\"ID\":\"§{uuid}\",\"Type\":\"ContainerStarted\",\"Data\":\"§{hex:64}\"}"),
    ("I", "kubelet.go", "\"SyncLoop ADD\" source=\"api\" pods=[\"default/web-§{hex:10}-§{hex:5}\"]"),
    ("I", "kubelet.go", "\"SyncLoop DELETE\" source=\"api\" pods=[\"default/web-§{hex:10}-§{hex:5}\"]"),
    ("I", "reconciler_common.go", "\"operationExecutor.VerifyControllerAttachedVolume started for volume \\\"kube-api-access-§{hex:5}\\\" (UniqueName: \\\"kubernetes.io/projected/§{uuid}-kube-api-access-§{hex:5}\\\") pod=\\\"default/web-§{hex:10}-§{hex:5}\\\"\""),
    ("E", "pod_workers.go", "\"Error syncing pod, skipping\" err=\"failed to \\\"StartContainer\\\" for \\\"app\\\" with CrashLoopBackOff: \\\"back-off §{choice:10s|20s|40s|1m20s|2m40s|5m0s} restarting failed container\\\"\" pod=\"default/web-§{hex:10}-§{hex:5}\""),
    ("W", "container_log_manager.go", "\"Failed to rotate log for container\" err=\"failed to rotate log \\\"/var/log/pods/§{uuid}/app/0.log\\\": no such file or directory\" containerID=\"§{hex:64}\""),
    ("I", "prober.go", "\"Probe failed\" probeType=\"Readiness\" pod=\"default/web-§{hex:10}-§{hex:5}\" podUID=\"§{uuid}\" containerName=\"app\" probeResult=\"failure\" output=\"Get \\\"http://§{ip:private}:8080/healthz\\\": dial tcp §{ip:private}:8080: connect: connection refused\""),
    ("I", "kuberuntime_container.go", "\"Killing container with a grace period\" pod=\"default/web-§{hex:10}-§{hex:5}\" podUID=\"§{uuid}\" containerName=\"app\" containerID=\"containerd://§{hex:64}\" gracePeriod=30"),
    ("I", "eviction_manager.go", "\"Eviction manager: attempting to reclaim\" resourceName=\"ephemeral-storage\""),
    ("E", "remote_runtime.go", "\"ContainerStatus from runtime service failed\" err=\"rpc error: code = NotFound desc = an error occurred when try to find container \\\"§{hex:64}\\\": not found\" containerID=\"§{hex:64}\""),
    ("I", "log.go", "\"Warning: event for pod with 0 errors\" pod=\"kube-system/coredns-§{hex:10}-§{hex:5}\""),
    ("F", "server.go", "\"Failed to run kubelet\" err=\"failed to run Kubelet: validate service connection: CRI v1 runtime API is not implemented for endpoint \\\"unix:///run/containerd/containerd.sock\\\"\""),
])

SYSTEMS = {
    "hdfs": HDFS, "hadoop": HADOOP, "spark": SPARK, "zookeeper": ZOOKEEPER, "openstack": OPENSTACK,
    "bgl": BGL, "hpc": HPC, "thunderbird": THUNDERBIRD, "windows": WINDOWS, "linux": LINUX,
    "mac": MAC, "android": ANDROID, "healthapp": HEALTHAPP, "apache": APACHE, "openssh": OPENSSH,
    "proxifier": PROXIFIER, "kubelet": KUBELET,
}


def zipf_weights(n, s=1.1):
    """Skewed template frequencies: the k-th listed template has weight 1/k^s."""
    return [1.0 / (k ** s) for k in range(1, n + 1)]


def generate(name, spec):
    r = random.Random("logflux-corpus-" + name)
    templates = spec["templates"]
    weights = zipf_weights(len(templates))
    t = spec["start"]
    lines, labels = [], []
    for _ in range(spec.get("lines", LINES_PER_SYSTEM)):
        level, comp, message = r.choices(templates, weights)[0]
        t_line = truncate(t, spec["digits"])
        text, template = fill(r, message)
        # component strings may carry slots of their own (thread names): fill them, not labelled.
        comp_text = fill(r, comp)[0] if comp else comp
        line = spec["header"](r, t_line, level, comp_text) + text
        assert "\n" not in line and "§" not in line, line
        labels.append({"ts": iso(t_line, spec["digits"]),
                       "level": LEVEL_NAMES[level] if level is not None else None,
                       "template": template})
        lines.append(line)
        t += dt.timedelta(seconds=r.expovariate(1.0 / spec["gap"]))
    return lines, labels, t_line


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "corpus")
    os.makedirs(out, exist_ok=True)
    summary = {}
    for name, spec in SYSTEMS.items():
        lines, labels, last = generate(name, spec)
        with open(os.path.join(out, name + ".log"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(out, name + ".labels.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for label in labels:
                f.write(json.dumps(label, ensure_ascii=False, separators=(",", ":")) + "\n")
        read_time = (last + dt.timedelta(hours=3)).replace(microsecond=0)
        summary[name] = {"first": labels[0]["ts"], "last": labels[-1]["ts"],
                         "read_time": iso(read_time, 0),
                         "templates": len({l["template"] for l in labels})}
    with open(os.path.join(out, "systems.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    for name, s in summary.items():
        print("%-12s %s .. %s  read_time %s  %d templates" % (name, s["first"], s["last"], s["read_time"], s["templates"]))


if __name__ == "__main__":
    main()

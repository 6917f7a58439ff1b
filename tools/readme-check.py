#!/usr/bin/env python3
"""Runs README.md's shell blocks, in order, the way a newcomer pastes them, and fails when the
README and the programs disagree.

Usage: tools/readme-check.py [--readme README.md] [--bin-dir target/debug] [--keep] [--self-test]

Every fenced block of the README is handled, top to bottom:

- `sh` blocks run in bash (`set -e -o pipefail`) against fresh directories: a temporary HOME,
  a temporary working directory, free ports in place of 8080 (server) and 9999 (agent TCP), a
  temporary socket in place of /tmp/logflux-agent.sock, and the already-built binaries (from
  --bin-dir, first on PATH, as Install puts target/release there; `cargo run --release --bin
  NAME --` and `target/release/NAME` become NAME). Environment variables and the working
  directory carry over from block to block within a named shell, as in a terminal. Any
  command's non-zero exit fails the check, naming the README line.
- Other blocks (text, yaml) must say what they are for in an annotation, so that no block is
  left unchecked by accident.

Annotations live in HTML comments right before a block (invisible on GitHub):

    <!-- readme-check: DIRECTIVE ARGS
         DIRECTIVE ARGS -->

one directive per line, arguments split like a shell does:

    skip "REASON"                 the block is not run (the reason is printed)
    needs PROGRAM                 skipped, with that reason, when PROGRAM is not installed
    shell NAME                    this block and the following ones run in shell NAME (env and
                                  working directory of its own; the first is "main")
    file PATH                     the block's text is written to PATH (in the shell's
                                  working directory; ~ is the temporary HOME)
    expect [background]           a text block: the output of the previous sh block (or of the
                                  command it started in the background) must match it, line by
                                  line; a line "…" stands for any number of lines, "…" within a
                                  line for any text, and timestamps for any timestamp
    mask SAMPLE_RE [OUTPUT_RE]    in an expected block, text matching SAMPLE_RE stands for any
                                  text matching OUTPUT_RE (default: SAMPLE_RE)
    background "CMD" [args "EXTRA"] ready-line "REGEX" | ready-http "URL"
                                  the line whose command is CMD runs in the background (EXTRA
                                  appended), and the block goes on once its output has a line
                                  matching REGEX, or URL answers 200 (timeout: 300 s; the
                                  process ending first is a failure); stopped at the end.
                                  In EXTRA and URL, {work} is the work directory, {http_port}
                                  and {tcp_port} the ports that replace 8080 and 9999, and
                                  {up_http}, {up_tcp} and {up_serve} three more free ports
    status "CMD" N                the line whose command is CMD may also exit with status N
    omit "CMD" "REASON"           the line whose command is CMD is not run
    placeholder "TEXT" "CMD" "REGEX"
                                  TEXT in later blocks stands for the last match of REGEX in
                                  the output of the line whose command is CMD

A line's command is its text without a trailing comment and `&`, as written in the README.
"""

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

READY_TIMEOUT_S = 300
BLOCK_TIMEOUT_S = 600
_ISO_TIME = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d|UTC))?"
_SYSLOG_TIME = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?"
DEFAULT_MASKS = [
    # A time written in the sample stands for any time of the same form: RFC 3339, a local
    # "date time" display (with an optional zone), or journalctl's "Nov 30 10:42:30".
    (_ISO_TIME, _ISO_TIME),
    (_SYSLOG_TIME, _SYSLOG_TIME),
]


class CheckError(Exception):
    pass


class Block:
    def __init__(self, lang, text, line, heading, directives):
        self.lang = lang
        self.text = text
        self.line = line
        self.heading = heading
        self.directives = directives

    def where(self):
        return f"README line {self.line} ({self.heading})"

    def get(self, name):
        return [d[1:] for d in self.directives if d[0] == name]


def parse(readme):
    """The fenced blocks, each with the directives of the annotations just before it."""
    lines = readme.splitlines()
    blocks, pending, heading = [], [], "top"
    pending_line = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("<!-- readme-check"):
            start = i
            body = [line[len("<!-- readme-check"):]]
            while "-->" not in body[-1]:
                i += 1
                if i == len(lines):
                    raise CheckError(f"README line {start + 1}: unterminated annotation")
                body.append(lines[i])
            body[-1] = body[-1][: body[-1].index("-->")]
            text = "\n".join(body).lstrip(":").strip()
            for d in text.splitlines():
                if d.strip():
                    pending.append(shlex.split(d.strip()))
            pending_line = start + 1
        elif line.startswith("```"):
            lang = line[3:].strip()
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(lang, "\n".join(body) + "\n", start + 1, heading, pending))
            pending, pending_line = [], None
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.strip() and pending:
            raise CheckError(
                f"README line {pending_line}: an annotation must come right before its block"
            )
        i += 1
    return blocks


def split_comment(line):
    """`code`, without a trailing `# comment` (outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                continue
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def command_of(code):
    """A line's command as annotations name it: no trailing `&`, single spaces."""
    code = code.strip()
    if code.endswith("&") and not code.endswith("&&"):
        code = code[:-1]
    return " ".join(code.split())


def logical_lines(text):
    """(first line index, text) of each line, `\\`-continued lines joined."""
    out, acc, first = [], [], None
    for n, line in enumerate(text.splitlines()):
        if first is None:
            first = n
        acc.append(line)
        if line.rstrip().endswith("\\"):
            continue
        out.append((first, "\n".join(acc)))
        acc, first = [], None
    if acc:
        out.append((first, "\n".join(acc)))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def line_regex(sample, masks):
    """The regular expression an output line must match for the sample line `sample`."""
    out, i = [], 0
    while i < len(sample):
        for sample_re, output_re in masks:
            m = re.compile(sample_re).match(sample, i)
            if m and m.end() > i:
                out.append(f"(?:{output_re})")
                i = m.end()
                break
        else:
            out.append(".*" if sample[i] == "…" else re.escape(sample[i]))
            i += 1
    return re.compile("".join(out))


def matches(sample_lines, output_lines, masks):
    """Whether the output matches the sample; else the first sample line that did not match."""
    pats = [None if s.strip() == "…" else line_regex(s.rstrip(), masks) for s in sample_lines]
    memo = {}
    best = [0]

    def go(i, j):
        if (i, j) in memo:
            return memo[(i, j)]
        best[0] = max(best[0], i)
        if i == len(pats):
            r = j == len(output_lines)
        elif pats[i] is None:
            r = any(go(i + 1, k) for k in range(j, len(output_lines) + 1))
        else:
            r = j < len(output_lines) and bool(pats[i].fullmatch(output_lines[j])) and go(
                i + 1, j + 1
            )
        memo[(i, j)] = r
        return r

    ok = go(0, 0)
    return ok, (None if ok else sample_lines[min(best[0], len(sample_lines) - 1)])


PRELUDE = r"""
rc_fail() { echo "readme-check: $*" >&2; exit 3; }
rc_wait_line() {  # LOG REGEX PID
    local deadline=$((SECONDS + %(timeout)d))
    until grep -qE -- "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || rc_fail "README line $RC_LINE: the command ended before its output matched /$2/ (output: $1)"
        [ "$SECONDS" -lt "$deadline" ] || rc_fail "README line $RC_LINE: no output line matched /$2/ within %(timeout)d s (output: $1)"
        sleep 0.1
    done
}
rc_wait_http() {  # URL PID LOG
    local deadline=$((SECONDS + %(timeout)d))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || rc_fail "README line $RC_LINE: the command ended before $1 answered (output: $3)"
        [ "$SECONDS" -lt "$deadline" ] || rc_fail "README line $RC_LINE: $1 did not answer within %(timeout)d s (output: $3)"
        sleep 0.1
    done
}
rc_capture() {  # FILE REGEX
    local v
    v=$(grep -oE -- "$2" "$1" | tail -n1)
    [ -n "$v" ] || echo "readme-check: no match of /$2/ in $1" >&2
    printf '%%s' "$v"
}
""" % {"timeout": READY_TIMEOUT_S}


class Runner:
    def __init__(self, args):
        self.readme_path = os.path.abspath(args.readme)
        self.bin_dir = os.path.abspath(args.bin_dir)
        for b in ("logflux", "logflux-server", "logflux-agent"):
            if not os.access(os.path.join(self.bin_dir, b), os.X_OK):
                raise CheckError(f"{self.bin_dir}/{b} is missing: build first (cargo build)")
        self.work = tempfile.mkdtemp(prefix="readme-check-")
        self.keep = args.keep
        self.home = os.path.join(self.work, "home")
        os.makedirs(self.home)
        self.http_port, self.tcp_port = free_port(), free_port()
        self.up_http, self.up_tcp, self.up_serve = free_port(), free_port(), free_port()
        self.subst = [
            (re.compile(r"cargo run --release --bin ([\w-]+) --"), r"\1"),
            (re.compile(r"(?<![\w/.-])target/release/([\w-]+)"), r"\1"),
            (re.compile(r"127\.0\.0\.1:8080\b"), f"127.0.0.1:{self.http_port}"),
            (re.compile(r"127\.0\.0\.1:9999\b"), f"127.0.0.1:{self.tcp_port}"),
            (re.compile(r"/dev/tcp/127\.0\.0\.1/9999\b"), f"/dev/tcp/127.0.0.1/{self.tcp_port}"),
            (re.compile(r"/tmp/logflux-agent\.sock"), os.path.join(self.work, "agent.sock")),
        ]
        self.placeholders = []  # (text, replacement)
        self.shells = {}
        self.shell = "main"
        self.pids_file = os.path.join(self.work, "background.pids")
        open(self.pids_file, "w").close()
        self.prev_output = None
        self.prev_background = None
        self.counter = 0
        self.ran = self.checked = 0
        self.skipped = []

    def substitute(self, text):
        for pat, rep in self.subst:
            text = pat.sub(rep, text)
        return text

    def fill(self, text):
        """`{work}`, `{http_port}`, `{tcp_port}`, `{up_http}`, `{up_tcp}`, `{up_serve}` in an annotation."""
        for k, v in {
            "work": self.work,
            "http_port": self.http_port,
            "tcp_port": self.tcp_port,
            "up_http": self.up_http,
            "up_tcp": self.up_tcp,
            "up_serve": self.up_serve,
        }.items():
            text = text.replace("{" + k + "}", str(v))
        return text

    def shell_state(self, name):
        if name not in self.shells:
            d = os.path.join(self.work, "shell-" + name)
            os.makedirs(d)
            cwd = os.path.join(self.work, "run")
            os.makedirs(cwd, exist_ok=True)
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("LOGFLUX_", "AWS_", "CARGO", "RUST"))
            }
            env["HOME"] = self.home
            env["PATH"] = self.bin_dir + os.pathsep + env.get("PATH", "")
            env.pop("NO_COLOR", None)
            with open(os.path.join(d, "env"), "w") as f:
                for k, v in env.items():
                    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                        f.write(f"export {k}={shlex.quote(v)}\n")
            with open(os.path.join(d, "cwd"), "w") as f:
                f.write(cwd)
            self.shells[name] = d
        return self.shells[name]

    def next_file(self, what):
        self.counter += 1
        return os.path.join(self.work, f"{self.counter:02d}-{what}")

    def script(self, block):
        """The block as bash runs it, with every directive applied."""
        backgrounds = {}
        for d in block.get("background"):
            cmd, rest = d[0], d[1:]
            opts = dict(zip(rest[::2], rest[1::2]))
            backgrounds[" ".join(cmd.split())] = opts
        statuses = {" ".join(d[0].split()): d[1] for d in block.get("status")}
        omits = {" ".join(d[0].split()): d[1] for d in block.get("omit")}
        captures = {" ".join(d[1].split()): (d[0], d[2]) for d in block.get("placeholder")}
        used = set()
        out = []
        bg_logs = []
        for n, text in logical_lines(block.text):
            readme_line = block.line + 1 + n
            code = split_comment(text)
            cmd = command_of(code)
            if not cmd:
                continue
            for placeholder, value in self.placeholders:
                code = code.replace(placeholder, value)
            code = self.substitute(code)
            out.append(f"RC_LINE={readme_line}")
            if cmd in omits:
                used.add(cmd)
                print(f"  omitted line {readme_line}: {cmd} ({omits[cmd]})")
                continue
            if cmd in backgrounds:
                used.add(cmd)
                opts = backgrounds[cmd]
                log = self.next_file("background.log")
                bg_logs.append(log)
                code = command_of(code)
                extra = self.fill(opts.get("args", ""))
                out.append(f"{code} {extra} >{shlex.quote(log)} 2>&1 &")
                out.append(f"echo $! >>{shlex.quote(self.pids_file)}")
                if "ready-line" in opts:
                    out.append(f"rc_wait_line {shlex.quote(log)} {shlex.quote(opts['ready-line'])} $!")
                elif "ready-http" in opts:
                    url = self.fill(opts["ready-http"])
                    out.append(f"rc_wait_http {shlex.quote(url)} $! {shlex.quote(log)}")
                else:
                    raise CheckError(f"{block.where()}: background {cmd!r} needs ready-line or ready-http")
                continue
            if cmd in captures:
                used.add(cmd)
                placeholder, regex = captures[cmd]
                cap = self.next_file("capture.txt")
                code = f"{code} | tee {shlex.quote(cap)}"
                self.placeholders.append(
                    (placeholder, f"$(rc_capture {shlex.quote(cap)} {shlex.quote(regex)})")
                )
            if cmd in statuses:
                used.add(cmd)
                n_ok = int(statuses[cmd])
                code = (
                    f"{{ {code}\n}} || {{ rc=$?; [ $rc -eq {n_ok} ] || "
                    f'rc_fail "README line {readme_line}: exit status $rc"; }}'
                )
            out.append(code)
        named = set(backgrounds) | set(statuses) | set(omits) | set(captures)
        missing = named - used
        if missing:
            raise CheckError(
                f"{block.where()}: the annotation names commands the block does not have: "
                + "; ".join(sorted(missing))
            )
        return "\n".join(out) + "\n", bg_logs

    def run_sh(self, block):
        state = self.shell_state(self.shell)
        body, bg_logs = self.script(block)
        script = (
            "set -e -o pipefail\n"
            + PRELUDE
            + f"source {shlex.quote(state + '/env')}\n"
            + f'cd "$(cat {shlex.quote(state + "/cwd")})"\n'
            + f"trap 'export -p >{shlex.quote(state + '/env')}; pwd >{shlex.quote(state + '/cwd')}' EXIT\n"
            + "trap 'rc=$?; echo \"readme-check: README line $RC_LINE: exit status $rc\" >&2' ERR\n"
            + body
        )
        path = self.next_file("block.sh")
        with open(path, "w") as f:
            f.write(script)
        output = self.next_file("block.out")
        print(f"run {block.where()} in shell {self.shell}")
        with open(output, "w") as out:
            try:
                r = subprocess.run(
                    ["bash", path],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BLOCK_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired:
                raise CheckError(f"{block.where()}: did not finish within {BLOCK_TIMEOUT_S} s")
        text = open(output, errors="replace").read()
        if r.returncode != 0:
            raise CheckError(
                f"{block.where()}: failed (exit status {r.returncode}); script {path}\n"
                + indent(text)
                + "".join(
                    f"\n  background output {log}:\n" + indent(tail(log))
                    for log in bg_logs
                    if tail(log).strip()
                )
            )
        self.ran += 1
        self.prev_output = output
        self.prev_background = bg_logs[-1] if bg_logs else None

    def check_expect(self, block, args):
        source = self.prev_background if args[:1] == ["background"] else self.prev_output
        if source is None:
            raise CheckError(f"{block.where()}: expect, but no output to compare with")
        masks = [(self.substitute(m[0]), m[1] if len(m) > 1 else m[0]) for m in block.get("mask")]
        masks += DEFAULT_MASKS
        sample = self.substitute(block.text).splitlines()
        output = [l.rstrip() for l in open(source, errors="replace").read().splitlines()]
        ok, bad = matches(sample, output, masks)
        if not ok:
            raise CheckError(
                f"{block.where()}: the output contradicts the README's sample (first sample "
                f"line not matched: {bad!r})\n  sample:\n"
                + indent("\n".join(sample))
                + f"\n  output ({source}):\n"
                + indent("\n".join(output))
            )
        self.checked += 1
        print(f"ok  {block.where()}: output matches the sample")

    def write_file(self, block, path):
        state = self.shell_state(self.shell)
        cwd = open(state + "/cwd").read().strip()
        if path.startswith("~/"):
            path = os.path.join(self.home, path[2:])
        path = os.path.join(cwd, path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(self.substitute(block.text))
        print(f"wrote {block.where()} to {path}")

    def run(self, blocks):
        for b in blocks:
            for d in b.get("shell"):
                self.shell = d[0]
            skip = b.get("skip")
            if skip:
                self.skipped.append(f"{b.where()}: {' '.join(skip[0])}")
                print(f"skip {b.where()}: {' '.join(skip[0])}")
                continue
            missing = [p for d in b.get("needs") for p in d if shutil.which(p) is None]
            if missing:
                self.skipped.append(f"{b.where()}: {', '.join(missing)} not installed")
                print(f"skip {b.where()}: {', '.join(missing)} not installed")
                continue
            if b.get("file"):
                self.write_file(b, b.get("file")[0][0])
            elif b.get("expect"):
                self.check_expect(b, b.get("expect")[0])
            elif b.lang in ("sh", "bash", "shell"):
                self.run_sh(b)
            else:
                raise CheckError(
                    f"{b.where()}: a {b.lang or 'plain'} block without a readme-check "
                    "annotation (file, expect or skip)"
                )

    def stop_background(self):
        pids = [int(p) for p in open(self.pids_file).read().split() if p.strip()]
        for p in pids:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for p in pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(p, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def indent(text):
    return "\n".join("    " + l for l in text.splitlines()[-60:])


def tail(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""


def self_test():
    """The parser and the matcher, on small cases (`--self-test`)."""
    m = DEFAULT_MASKS
    assert matches(["a …", "…", "c"], ["a b", "x", "y", "c"], m)[0]
    assert matches(["…"], [], m)[0]
    assert not matches(["a", "b"], ["a"], m)[0]
    assert not matches(["a"], ["a", "b"], m)[0], "extra output lines contradict the sample"
    assert matches(["2026-11-21T00:37:54.056Z INFO x"], ["2026-11-30T05:01:02.1Z INFO x"], m)[0]
    assert not matches(["2026-11-21 00:37:54 ERROR x"], ["2026-11-30 05:01:02 WARN x"], m)[0]
    masked = [("host=vm", r"host=\S+")] + m
    assert matches(["y host=vm"], ["y host=db-1"], masked)[0]
    assert split_comment("a '#b' \"#c\" # d") == "a '#b' \"#c\""
    assert command_of("x  y &   ") == "x y"
    assert logical_lines("a \\\n  b\nc\n") == [(0, "a \\\n  b"), (2, "c")]
    blocks = parse(
        "# T\n<!-- readme-check: skip \"why not\"\n  needs nc -->\n```sh\nx\n```\n```text\ny\n```\n"
    )
    assert [b.directives for b in blocks] == [[["skip", "why not"], ["needs", "nc"]], []]
    assert blocks[0].line == 4 and blocks[0].heading == "T" and blocks[1].text == "y\n"
    try:
        parse("<!-- readme-check: skip x -->\ntext\n```sh\n```\n")
        raise AssertionError("an annotation away from its block is refused")
    except CheckError:
        pass
    print("readme-check: self-test ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--readme", default=os.path.join(root, "README.md"))
    ap.add_argument("--bin-dir", default=os.path.join(root, "target", "debug"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--self-test", action="store_true", help="test the parser and matcher, only")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    runner = None
    try:
        blocks = parse(open(args.readme).read())
        runner = Runner(args)
        print(f"readme-check: {len(blocks)} blocks; work directory {runner.work}")
        runner.run(blocks)
    except CheckError as e:
        print(f"readme-check: FAILED: {e}", file=sys.stderr)
        if runner is not None:
            runner.keep = True
        return 1
    finally:
        if runner is not None:
            runner.stop_background()
            if runner.keep:
                print(f"readme-check: kept {runner.work}")
            else:
                shutil.rmtree(runner.work, ignore_errors=True)
    print(
        f"readme-check: ok — {runner.ran} shell blocks ran, {runner.checked} outputs matched, "
        f"{len(runner.skipped)} blocks skipped:"
    )
    for s in runner.skipped:
        print(f"  {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

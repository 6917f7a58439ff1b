#!/usr/bin/env bash
# The proof suites in one command: benchmarks, faults, abuse, security, fuzzing and API
# robustness.
#
#   tools/proof.sh                 full form (about an hour): release build; rewrites the
#                                  generated tables of docs/benchmarks.md and docs/reliability.md
#   tools/proof.sh --short         short form (minutes), as CI runs it; writes no document
#   tools/proof.sh [--short] SUITE...   only some of: bench faults abuse security fuzz api
#
# The fault suite mounts small tmpfs file systems for its full-disk scenarios (root needed) and
# runs the agent under faketime for clock skew (Debian package faketime). The API suite
# installs schemathesis from PyPI into target/venv-schemathesis. The fuzz suite needs
# cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

short=
suites=()
for a in "$@"; do
    case "$a" in
    --short) short=--short ;;
    bench | faults | abuse | security | fuzz | api) suites+=("$a") ;;
    *) echo "usage: $0 [--short] [bench|faults|abuse|security|fuzz|api]..." >&2; exit 2 ;;
    esac
done
[ "${#suites[@]}" -gt 0 ] || suites=(bench faults abuse security fuzz api)
want() { printf '%s\n' "${suites[@]}" | grep -qx "$1"; }

if [ -n "$short" ]; then
    profile=debug
    cargo build --workspace --bins --locked
else
    profile=release
    cargo build --workspace --bins --release --locked
fi
bin=target/$profile
results=()
run() {
    local name=$1
    shift
    printf '\n==> %s: %s\n' "$name" "$*"
    local t0=$SECONDS
    if "$@"; then
        results+=("$name: passed ($((SECONDS - t0)) s)")
    else
        results+=("$name: FAILED ($((SECONDS - t0)) s)")
    fi
}

if want bench; then
    if [ -n "$short" ]; then
        run bench "$bin/logflux-bench" all --short
    else
        run bench "$bin/logflux-bench" all --write docs/benchmarks.md
    fi
fi
if want faults; then
    if [ -n "$short" ]; then
        run faults "$bin/logflux-bench" faults --short
    else
        run faults "$bin/logflux-bench" faults --write docs/reliability.md
    fi
fi
if want abuse; then
    # Floods, hostile producers and slow readers beside legitimate traffic; thousands of
    # connections, so the file descriptor limit is raised as far as this shell may.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if [ -n "$short" ]; then
        run abuse "$bin/logflux-bench" abuse --short
    else
        run abuse "$bin/logflux-bench" abuse --write docs/reliability.md
    fi
fi
if want security; then
    # Canaries, secrets, permissions and bit flips over a running system; tenant isolation;
    # what the client sends; the agent's spool; the sealing format under every flip.
    run security cargo test --locked \
        -p logflux-client --test security --test privacy --test keys_cli \
        -p logflux-server --test isolation --test ingest_errors \
        -p logflux-agent --test faults \
        -p logflux-crypto --test seal --test openssl
fi
if want fuzz; then
    run fuzz tools/fuzz.sh $short
fi
if want api; then
    run api tools/api-fuzz.sh $short "$bin/logflux-server"
fi

printf '\n==> summary\n'
printf '%s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q FAILED

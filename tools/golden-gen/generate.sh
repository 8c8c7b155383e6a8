#!/usr/bin/env bash
# Regenerates the golden `data` bytes of the original (Go) DynamoDB source adapter:
# for every crates/source/testdata/golden/**/NAME.input.json (a GetRecords response body)
# writes NAME.golden.jsonl beside it (json.Marshal of each record, one per line).
#
# Needs Debian's golang-go (Go 1.19) and golang-github-aws-aws-sdk-go-dev (aws-sdk-go 1.44);
# builds in GOPATH mode with no network. Idempotent: same inputs, same outputs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
golden="$repo/crates/source/testdata/golden"
gopath="${GOLDEN_GOPATH:-/usr/share/gocode}"
pkgs="apt-get install golang-go golang-github-aws-aws-sdk-go-dev"

die() { printf 'generate.sh: error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not installed; run: $pkgs"
[ -d "$gopath/src/github.com/aws/aws-sdk-go/service/dynamodbstreams" ] ||
    die "aws-sdk-go sources not found under $gopath/src; run: $pkgs"
[ -d "$golden" ] || die "no golden directory at $golden"

# The escaping of encoding/json changed in Go 1.22 (\b and \f instead of \u0008 and \u000c);
# the original adapter was built with an older Go. Refuse other versions unless told otherwise.
gov="$(go env GOVERSION)"
case "$gov" in
    go1.19|go1.19.*|go1.20|go1.20.*|go1.21|go1.21.*) ;;
    *) [ "${GOLDEN_ANY_GO:-}" = 1 ] ||
        die "$gov is not Go 1.19-1.21 (the original's era; 1.22+ escapes differently); set GOLDEN_ANY_GO=1 to use it anyway" ;;
esac

tmp="$(mktemp -d "${TMPDIR:-/tmp}/golden-gen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Use the normal build cache if it is usable, else a throw-away one.
if ! { cache="$(go env GOCACHE 2>/dev/null)" && [ -n "$cache" ] && mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; }; then
    export GOCACHE="$tmp/gocache"
fi

( cd "$here" && GOPATH="$gopath" GO111MODULE=off GOFLAGS= go build -o "$tmp/golden-gen" . ) ||
    die "building golden-gen failed (is $pkgs complete?)"

# The original ran in a UTC container. (The SDK converts epoch timestamps to UTC itself,
# so TZ makes no difference to the output; it is pinned anyway.)
export TZ=UTC

count=0
while IFS= read -r -d '' input; do
    out="${input%.input.json}.golden.jsonl"
    "$tmp/golden-gen" "$input" > "$tmp/out" || die "golden-gen failed on ${input#"$repo"/}"
    [ -s "$tmp/out" ] || die "no records in ${input#"$repo"/}"
    if [ -f "$out" ] && cmp -s "$tmp/out" "$out"; then
        status=unchanged
    else
        cp "$tmp/out" "$out"
        status=written
    fi
    printf '%-9s %s (%s records)\n' "$status" "${out#"$repo"/}" "$(wc -l < "$out")"
    count=$((count + 1))
done < <(find "$golden" -name '*.input.json' -type f -print0 | LC_ALL=C sort -z)

[ "$count" -gt 0 ] || die "no *.input.json under ${golden#"$repo"/}"

# Report golden files whose input is gone (not deleted: that is left to a human).
while IFS= read -r -d '' g; do
    [ -f "${g%.golden.jsonl}.input.json" ] || printf 'warning: orphan %s (no matching .input.json)\n' "${g#"$repo"/}" >&2
done < <(find "$golden" -name '*.golden.jsonl' -type f -print0)

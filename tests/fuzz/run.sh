#!/usr/bin/env bash
# Runs every libFuzzer harness built in BUILD_DIR (BUILD_DIR/fuzz-NAME) for
# FUZZ_SECONDS each, seeded from the shared third-party vectors.
#
#   VECTORS=../shared/vectors FUZZ_SECONDS=60 bash tests/fuzz/run.sh build/fuzz
#
# Seeds go to BUILD_DIR/corpus-NAME (kept between runs, so the corpus grows),
# crashes, leaks, timeouts and OOMs to BUILD_DIR/artifacts/NAME-*. Exits
# non-zero when any harness failed.
#
# Seeds per harness:
#   ocsp_req  every OCSP request file under $VECTORS, plus
#             openssl-fuzz-corpora/asn1 and aws-lc/fuzz/ocsp_corpus;
#   getpath   the same request files as base64, base64url, percent-encoded,
#             line-wrapped and unpadded GET paths;
#   NAME      otherwise: tests/fuzz/NAME.seeds when it exists, one path under
#             $VECTORS per line (a file or a folder; '#' starts a comment;
#             globs allowed); else an empty corpus.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: VECTORS=DIR FUZZ_SECONDS=N bash $0 BUILD_DIR" >&2
    exit 2
fi
build=$1
here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
vectors=${VECTORS:-$here/../../../shared/vectors}
if [ ! -d "$vectors" ]; then
    echo "run.sh: VECTORS=$vectors is not a directory; fuzzing without seeds" >&2
    vectors=
fi
mkdir -p "$build/artifacts"

# Copies a file into a corpus folder under its content hash (no duplicates).
add_seed() { # corpus file
    [ -s "$2" ] || return 0
    local h
    h=$(sha1sum <"$2" | cut -c1-40)
    [ -e "$1/$h" ] || cp "$2" "$1/$h"
}

# Writes a string (no newline) as a seed.
add_seed_str() { # corpus string
    local h
    h=$(printf '%s' "$2" | sha1sum | cut -c1-40)
    [ -e "$1/$h" ] || printf '%s' "$2" >"$1/$h"
}

# Every OCSP request file among the vectors, NUL-separated.
request_files() {
    [ -n "$vectors" ] || return 0
    find "$vectors" -type f \( -name '*.req.der' -o -name 'ocsp_request*' -o -name '*request*.der' \
        -o -name 'req-*.der' -o -name '*-req.der' -o -name '*Req.der' -o -name '*Request.der' \
        -o -name 'OCSPMalformedInputTest.*' \) -print0
}

seed_dir() { # corpus path-under-vectors
    [ -n "$vectors" ] || return 0
    local f
    for d in "$vectors"/$2; do # unquoted $2: globs in .seeds files
        [ -e "$d" ] || continue
        while IFS= read -r -d '' f; do add_seed "$1" "$f"; done < <(find "$d" -type f -print0)
    done
}

seed_ocsp_req() {
    local f
    while IFS= read -r -d '' f; do add_seed "$1" "$f"; done < <(request_files)
    seed_dir "$1" openssl-fuzz-corpora/asn1
    seed_dir "$1" aws-lc/fuzz/ocsp_corpus
}

seed_getpath() {
    local f b
    while IFS= read -r -d '' f; do
        b=$(base64 -w0 <"$f")
        [ -n "$b" ] || continue
        add_seed_str "$1" "$b"                                    # raw + / =
        add_seed_str "$1" "$(printf '%s' "$b" | sed 's/+/%2B/g; s,/,%2F,g; s/=/%3D/g')"
        add_seed_str "$1" "$(printf '%s' "$b" | sed 's/+/%2b/g; s,/,%2f,g; s/=/%3d/g')"
        add_seed_str "$1" "$(printf '%s' "$b" | tr '+/' '-_' | tr -d '=')" # base64url
        add_seed_str "$1" "$(printf '%s' "$b" | sed 's/+/ /g; s/=*$//')"   # '+' mangled
        add_seed_str "$1" "$(printf '%s' "$b" | sed 's/+/%20/g')"
        add_seed_str "$1" "$(base64 -w64 <"$f" | sed ':a;N;$!ba;s/\n/%0A/g')" # wrapped
    done < <(request_files)
    add_seed_str "$1" "MAA="
}

seed_from_list() { # corpus listfile
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        line=$(printf '%s' "$line" | tr -d '[:space:]')
        [ -n "$line" ] || continue
        if [ -n "$vectors" ] && [ -f "$vectors/$line" ]; then
            add_seed "$1" "$vectors/$line"
        else
            seed_dir "$1" "$line"
        fi
    done <"$2"
}

status=0
found=0
for bin in "$build"/fuzz-*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    found=1
    name=${bin##*/fuzz-}
    corpus=$build/corpus-$name
    mkdir -p "$corpus"
    case $name in
    ocsp_req) seed_ocsp_req "$corpus" ;;
    getpath) seed_getpath "$corpus" ;;
    *) if [ -f "$here/$name.seeds" ]; then seed_from_list "$corpus" "$here/$name.seeds"; fi ;;
    esac
    echo "== fuzz-$name: $(find "$corpus" -type f | wc -l) seeds, ${seconds}s" >&2
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" ${FUZZ_FLAGS:-} "$corpus"; then
        echo "== fuzz-$name FAILED; see $build/artifacts/$name-*" >&2
        status=1
    fi
done
if [ $found -eq 0 ]; then
    echo "run.sh: no fuzz-* harness in $build" >&2
    exit 1
fi
exit $status

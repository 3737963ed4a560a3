#!/usr/bin/env bash
# Runs the Test::Nginx suites (t/*.t, or the files given) with nginx under
# valgrind memcheck, the way openresty's Test::Nginx does it with
# TEST_NGINX_USE_VALGRIND=1 (our t/compat runner honours the same switch):
# one nginx per test block, in the foreground, full leak check at its exit,
# the suppressions in t/valgrind.suppress (third-party false positives only;
# t/run passes them).
# Too slow for every CI run: not part of scripts/test.sh.
#
#   bash scripts/valgrind.sh                    # every suite
#   bash scripts/valgrind.sh t/001-sanity.t t/013-tls.t
#   bash scripts/valgrind.sh --summary          # the last run's summary again
#
# Needs a build in $RESTY_NATS_BUILD_DIR (default build/).  Writes, per
# suite, the TAP (<name>.out) and nginx's / valgrind's stderr (<name>.err)
# to $VALGRIND_OUT (default <build>/valgrind/), then prints a summary:
# tests passed/failed per suite, every valgrind error (invalid read/write,
# uninitialised value, definitely lost, other) with the test block it came
# from and its top frames, flagged [OURS] when a frame is ours (the nats
# module, the patched lua module's setkeepalive_nats).  Uses its own scratch
# directory (<build>/t-run-valgrind), so it can run beside t/run.
#
# Exit status: 0 clean; 1 valgrind errors; 2 no valgrind error but failed
# tests (under valgrind some timing bounds may not hold: see the summary).
#
# Environment: VALGRIND_SUITE_TIMEOUT (seconds per suite, default 3600);
# TEST_NGINX_USE_VALGRIND (default 1: the standard memcheck options; any
# other value is passed to valgrind as its options, as Test::Nginx does);
# TEST_NGINX_TIMEOUT (default 15 here instead of 3); other TEST_NGINX_*
# settings (TEST_NGINX_LIB for openresty's Test::Nginx) go to t/run.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
BUILD=$(realpath -m "${RESTY_NATS_BUILD_DIR:-$REPO/build}")
OUT=$(realpath -m "${VALGRIND_OUT:-$BUILD/valgrind}")
RUN_DIR="$BUILD/t-run-valgrind"
SUITE_TIMEOUT=${VALGRIND_SUITE_TIMEOUT:-3600}
status_file="$OUT/status"       # "<file> <exit status> <seconds>" a line

# the summary, from the logs in $OUT
summarize() {  # wall-time
    perl - "$OUT" "$status_file" "$1" <<'PERL'
use strict;
use warnings;

my ($out, $status_file, $wall) = @ARGV;

# frames of our code: the module (C and the C++ core) and the lua module's
# setkeepalive_nats patch
my $ours = qr{resty_nats|ngx_http_lua_nats_module|keepalive_nats
              |\((?:nats_\w+|resty_nats_abi)\.(?:cc|h|c):\d+\)}x;

sub kind {
    my $head = shift;
    return 'invalid read/write'
        if $head =~ /^Invalid (?:read|write|free)|^Mismatched free|^Source and destination overlap/;
    return 'uninitialised' if $head =~ /uninitialised/;
    return 'definitely lost' if $head =~ /definitely lost/;
    return 'other';
}

my (@suites, %kinds, @errors);
my ($tests_ok, $tests_failed) = (0, 0);

open my $st, '<', $status_file or die "$status_file: $!";
while (my $line = <$st>) {
    chomp $line;
    my ($file, $rc, $secs) = split / /, $line;
    (my $name = $file) =~ s{.*/}{};
    $name =~ s/\.t$//;

    # the TAP
    my ($ok, $nok, $skip, $planned, @failed) = (0, 0, 0, undef);
    my $result = '';
    if (open my $in, '<', "$out/$name.out") {
        while (<$in>) {
            if (/^(not )?ok \d+\s*(.*)/) {
                my ($bad, $desc) = ($1, $2);
                if ($desc =~ /^#\s*skip\b/i) { $skip++; next; }
                $desc =~ s/^-\s*//;
                if ($bad && $desc !~ /#\s*TODO\b/) { $nok++; push @failed, $desc; }
                else { $ok++; }
            }
            $planned = $1 if /^1\.\.(\d+)/;
            $result = $1 if /^Result: (\w+)/;
        }
        close $in;
    }
    my $missing = defined $planned ? $planned - $ok - $nok - $skip : 0;
    $missing = 0 if $missing < 0;

    # valgrind's records in the runner's stderr: "==PID== ..." lines; the
    # runner prints each block's name ("t/x.t TEST n: ...") before
    # starting its nginx, so a record belongs to the last block named
    my ($block, %cur, @recs) = ('(startup)');
    if (open my $in, '<', "$out/$name.err") {
        while (my $l = <$in>) {
            chomp $l;
            if ($l =~ m{^(\S+\.t TEST \d+):}) {
                $block = $1;
                next;
            }
            next unless $l =~ /^==(\d+)== ?(.*)$/;
            my ($pid, $text) = ($1, $2);
            if ($text eq '') {                  # end of a record
                push @recs, delete $cur{$pid} if $cur{$pid};
                next;
            }
            if (!$cur{$pid}) {
                next if $text =~ /^(?:Warning|WARNING|HEAP SUMMARY|LEAK SUMMARY)/;
                $cur{$pid} = { head => $text, block => $block, lines => [] };
                next;
            }
            push @{ $cur{$pid}{lines} }, $text;
        }
        close $in;
        push @recs, grep { defined } values %cur;
    }
    for my $r (@recs) {
        my $k = kind($r->{head});
        my @frames = grep { /^\s*(?:at|by) 0x/ } @{ $r->{lines} };
        my $mine = grep { /$ours/ } @{ $r->{lines} };
        $kinds{$k}++;
        push @errors, { %$r, kind => $k, suite => $file, frames => \@frames,
                        ours => $mine ? 1 : 0 };
    }

    $tests_ok += $ok;
    $tests_failed += $nok + $missing;
    push @suites, { file => $file, rc => $rc, secs => $secs, ok => $ok,
                    nok => $nok, skip => $skip, missing => $missing,
                    failed => \@failed, nerr => scalar @recs,
                    result => $result };
}
close $st;

print "\n==== valgrind summary (logs in $out) ====\n";
my $files_ok = 0;
for my $s (@suites) {
    my $pass = $s->{rc} == 0 && !$s->{nok} && !$s->{missing};
    $files_ok++ if $pass;
    my $what = $s->{rc} == 124 || $s->{rc} == 137 ? 'TIMEOUT'
             : $pass ? 'ok' : 'FAIL';
    printf "%-26s %-7s %4d passed, %3d failed%s%s, %3d valgrind errors, %5ds\n",
        $s->{file}, $what, $s->{ok}, $s->{nok},
        $s->{missing} ? " ($s->{missing} not run)" : '',
        $s->{skip} ? ", $s->{skip} skipped" : '',
        $s->{nerr}, $s->{secs};
    print "    not ok: $_\n" for @{ $s->{failed} };
}
my $n = @errors;
my $n_ours = grep { $_->{ours} } @errors;
printf "files: %d, passed: %d, failed: %d; tests passed: %d, failed: %d; wall time: %ds\n",
    scalar @suites, $files_ok, @suites - $files_ok, $tests_ok, $tests_failed, $wall;
printf "valgrind errors: %d (%s); with a frame of our module: %d\n", $n,
    join(', ', map { "$_: " . ($kinds{$_} // 0) }
               'invalid read/write', 'uninitialised', 'definitely lost', 'other'),
    $n_ours;

for my $e (@errors) {
    print "\n", ($e->{ours} ? '[OURS] ' : ''), "$e->{block}: $e->{head}\n";
    my @top = @{ $e->{frames} };
    splice @top, 8 if @top > 8;
    print "    $_\n" for map { s/^\s+//r } @top;
}

exit($n ? 1 : ($files_ok == @suites ? 0 : 2));
PERL
}

if [ "${1:-}" = "--summary" ]; then
    [ -f "$status_file" ] || { echo "valgrind.sh: no run in $OUT" >&2; exit 1; }
    summarize "$(cat "$OUT/wall" 2>/dev/null || echo 0)"
    exit
fi

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind is not installed (bash scripts/deps.sh)" >&2
    exit 1
fi
if [ ! -f t/valgrind.suppress ]; then
    echo "valgrind.sh: t/valgrind.suppress is missing" >&2
    exit 1
fi

if [ "$#" -eq 0 ]; then
    set -- t/*.t
fi

mkdir -p "$OUT"
export TEST_NGINX_USE_VALGRIND=${TEST_NGINX_USE_VALGRIND:-1}
# nginx under memcheck is 20-50x slower: the client waits longer for a
# response (blocks with their own --- timeout keep it)
export TEST_NGINX_TIMEOUT=${TEST_NGINX_TIMEOUT:-15}
export RESTY_NATS_BUILD_DIR="$BUILD"
export RESTY_NATS_RUN_DIR="$RUN_DIR"

# nginx processes of ours still alive after a suite timed out (the runner
# puts nginx in a process group of its own): found by our scratch path
leftovers() {
    local d pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        if tr '\0' ' ' < "$d/cmdline" 2>/dev/null \
                | grep -qF -- "$RUN_DIR/servroot/"; then
            echo "$pid"
        fi
    done
}

start=$(date +%s)
: > "$status_file"
for f in "$@"; do
    name=$(basename "$f" .t)
    echo "valgrind.sh: $f" >&2
    t0=$(date +%s)
    rc=0
    # -v: the TAP goes to <name>.out, so that every result can be counted
    timeout -k 60 "$SUITE_TIMEOUT" bash t/run -v "$f" \
        > "$OUT/$name.out" 2> "$OUT/$name.err" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "valgrind.sh: $f timed out after ${SUITE_TIMEOUT}s" >&2
        for p in $(leftovers); do kill -TERM "$p" 2>/dev/null || true; done
    fi
    echo "$f $rc $(( $(date +%s) - t0 ))" >> "$status_file"
done
wall=$(( $(date +%s) - start ))
echo "$wall" > "$OUT/wall"

summarize "$wall"

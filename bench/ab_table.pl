#!/usr/bin/perl
# The table of bench/ab.sh from the records of its runs:
#
#   perl bench/ab_table.pl RUNDIR ROUNDS
#
# RUNDIR: an ab.sh run directory (build-ab/runs/<date>, with rK-before/
# and rK-after/results/). For each figure: the median [min..max] of each
# side, the ratio after/before of the medians, "/ctl" (for figures with a
# libnats control row: the median over the rounds of the round's ratio
# divided by the control's ratio in that round, which takes out the
# machine's drift between the two sides of a round), and the ratio of
# each round.
use strict; use warnings;
my ($dir, $rounds) = @ARGV;
my @sides = qw(before after);

# the values of KEY (column COL) recorded by SIDE in round R
sub vals {
    my ($side, $r, $key, $col) = @_;
    my @v;
    if ($key =~ /^core:(.*)/) {   # core: "name median min max bytes/s"
        my $name = $1;
        open my $fh, "<", "$dir/r$r-$side/results/core" or return ();
        while (<$fh>) { my @f = split; push @v, $f[1] if $f[0] eq $name }
        return grep { /^-?[0-9.eE+]+$/ } @v;
    }
    open my $fh, "<", "$dir/r$r-$side/results/$key" or return ();
    while (<$fh>) { my @f = split; push @v, $f[$col - 1] if defined $f[$col - 1] }
    return grep { /^-?[0-9.eE+]+$/ } @v;
}
sub med { my @a = sort { $a <=> $b } @_; my $n = @a; return undef unless $n;
          $n % 2 ? $a[($n - 1) / 2] : ($a[$n / 2 - 1] + $a[$n / 2]) / 2 }
sub hum {   # as run.sh: 1234567 -> 1.23M
    my $x = shift;
    return "-" unless defined $x;
    return sprintf("%.2fG", $x / 1e9) if $x >= 1e9;
    return sprintf("%.2fM", $x / 1e6) if $x >= 1e6;
    return sprintf("%.1fk", $x / 1e3) if $x >= 1e4;
    return sprintf("%.3f", $x) if $x < 100 && $x != int($x);
    return sprintf("%.0f", $x);
}

# rows: key, column, label (in run.sh order of its table)
my @rows;
for my $s (16, 1024) {
    my $l = $s == 16 ? "16 B" : "1 KiB";
    push @rows,
      ["publish_lua_$s", 1, "publish $l unbuffered, msgs/s"],
      ["publish_wb_lua_$s", 1, "publish $l set_write_buffer, msgs/s"],
      ["publish_bare_$s", 1, "publish $l bare cosocket (no lib), msgs/s"],
      ["publish_cpu_lua_$s", 1, "  unbuffered worker CPU, us/msg"],
      ["publish_cmp_$s", 3, "  interleaved unbuffered wall, us/msg"],
      ["publish_cmp_$s", 1, "  interleaved unbuffered CPU, us/msg"],
      ["publish_c_$s", 1, "  libnats publish $l (control), msgs/s"];
}
for my $s (16, 1024) {
    my $l = $s == 16 ? "16 B" : "1 KiB";
    push @rows,
      ["receive_lua_$s", 1, "receive $l, msgs/s"],
      ["receive_c_$s", 1, "  libnats receive $l (control), msgs/s"];
}
for my $s (16, 1024) {
    my $l = $s == 16 ? "16 B" : "1 KiB";
    push @rows,
      ["spublish_lua_$s", 1, "shared conn publish $l, msgs/s"],
      ["spublish_cpu_lua_$s", 1, "  worker CPU, us/msg"],
      ["spublish_c_$s", 1, "  libnats publish $l (control), msgs/s"];
}
for my $s (16, 1024) {
    my $l = $s == 16 ? "16 B" : "1 KiB";
    push @rows,
      ["jspublish_lua_$s", 1, "js:publish $l, msgs/s"],
      ["jspublish_c_$s", 1, "  libnats js_Publish $l (control), msgs/s"];
}
push @rows, ["jsfetch_lua", 1, "js:fetch + ack, msgs/s"],
            ["jsfetch_c", 1, "  libnats fetch (control), msgs/s"],
            ["native_1", 1, "libnats loop, 1 requester (control), req/s"],
            ["native_50", 1, "libnats loop, 50 requesters (control), req/s"],
            ["native_50c", 1, "libnats loop, 50 x own conn (control), req/s"],
            ["cpu", 2, "request on one conn, worker CPU, us/req"],
            ["cpu", 1, "  raw cosocket (no lib), worker CPU, us/req"];
my %wrk = (http => "HTTP alone (no NATS)", raw => "bare cosocket gateway (no lib)",
           gateway => "gateway request(cb)+wait", sync => "gateway request() sync",
           original => "original pattern SUB/PUB/UNSUB",
           shared => "shared conn gateway (request)",
           pubshared => "publish gateway, shared conn",
           pubpooled => "publish gateway, pooled conn",
           ingest => "ingest js:publish+msg_id, shared", kvget => "kv:get, shared");
for my $sc (qw(http raw gateway sync original shared pubshared pubpooled ingest kvget)) {
    push @rows, ["${sc}_w1", 1, "$wrk{$sc}, 1w, req/s"],
                ["${sc}_cpu", 1, "  1w worker CPU, us/req"],
                ["${sc}_w1", 3, "  1w p99, ms"],
                ["${sc}_w2", 1, "$wrk{$sc}, 2w, req/s"];
}
push @rows, ["fanout", 1, "fan-out, deliveries/s"],
            ["rss", 3, "worker RSS after the long gateway run, KiB"],
            ["srss", 3, "worker RSS after the long shared gateway run, KiB"];
my (%seen, @core);
for my $side (@sides) { for my $r (1 .. $rounds) {
    open my $fh, "<", "$dir/r$r-$side/results/core" or next;
    while (<$fh>) { my ($n) = split; push @core, $n unless $seen{$n}++ }
} }
push @rows, ["core:$_", 2, "core " . ($_ =~ s/^BM_//r =~ s/payload://gr =~ s/read:/read /gr) . ", items/s"] for @core;

# the libnats row measured in the same invocations as a row: the ratio of
# a round divided by the control's ratio of that round takes out what the
# machine did between the two sides (its median: "/ctl")
my %control;
for my $s (16, 1024) {
    $control{"publish_lua_$s"} = $control{"publish_wb_lua_$s"} = "publish_c_$s";
    $control{"receive_lua_$s"} = "receive_c_$s";
    $control{"spublish_lua_$s"} = "spublish_c_$s";
    $control{"jspublish_lua_$s"} = "jspublish_c_$s";
}
$control{jsfetch_lua} = "jsfetch_c";

sub round_ratios {   # the after/before ratio of each round of KEY, COL
    my ($key, $col) = @_;
    my @r;
    for my $round (1 .. $rounds) {
        my ($b, $a) = (med(vals("before", $round, $key, $col)),
                       med(vals("after", $round, $key, $col)));
        push @r, defined $b && defined $a && $b != 0 ? $a / $b : undef;
    }
    return @r;
}

my $fmt = "%-44s %-24s %-24s %-6s %-6s %s\n";
printf $fmt, "figure", "before", "after", "ratio", "/ctl", "ratio per round (round 1, 2, ...)";
for my $row (@rows) {
    my ($key, $col, $label) = @$row;
    my (%all, %round);
    for my $side (@sides) {
        for my $r (1 .. $rounds) {
            my @v = vals($side, $r, $key, $col);
            push @{$all{$side}}, @v;
            $round{$side}[$r] = med(@v);
        }
    }
    next unless @{$all{before}} || @{$all{after}};
    my @fig;
    for my $side (@sides) {
        my @a = sort { $a <=> $b } @{$all{$side}};
        push @fig, @a ? sprintf("%s [%s..%s]", hum(med(@a)), hum($a[0]), hum($a[-1])) : "-";
    }
    my ($mb, $ma) = (med(@{$all{before}}), med(@{$all{after}}));
    my $ratio = defined $mb && defined $ma && $mb != 0 ? sprintf("%.3f", $ma / $mb) : "-";
    my @rr = round_ratios($key, $col);
    my @pr = map { defined $_ ? sprintf("%.3f", $_) : "-" } @rr;
    my $norm = "-";
    if (my $ck = $control{$key}) {
        my @cr = round_ratios($ck, 1);
        my @n = map { defined $rr[$_] && defined $cr[$_] && $cr[$_] != 0
                      ? $rr[$_] / $cr[$_] : () } 0 .. $#rr;
        $norm = sprintf("%.3f", med(@n)) if @n;
    }
    printf $fmt, $label, @fig, $ratio, $norm, join(" ", @pr);
}

#!/usr/bin/env perl
# Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/
# from the protocol vectors in t/unit/vectors/*.bin plus hand-written
# frames. Deterministic: running it again gives the same files. The
# corpus is committed; rerun this after adding vectors.
#
#   perl fuzz/make_corpus.pl
#
# Files already in a corpus directory that this script does not write
# (reproducers of fixed bugs, crash-*/regress-*) are kept.

use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);

my $root = dirname(dirname(__FILE__));
$root = '.' if $root eq '';
my $vectors = "$root/t/unit/vectors";
my $out = "$root/fuzz/corpus";

sub put {
    my ($target, $name, $bytes) = @_;
    my $dir = "$out/$target";
    make_path($dir);
    open(my $fh, '>:raw', "$dir/$name") or die "$dir/$name: $!";
    print $fh $bytes;
    close($fh);
}

# a fixed xorshift so the "random" seeds never change
my $state = 0x2545F491;
sub rnd_bytes {
    my ($n) = @_;
    my $s = '';
    for (1 .. $n) {
        $state ^= ($state << 13) & 0xffffffff;
        $state ^= $state >> 17;
        $state ^= ($state << 5) & 0xffffffff;
        $s .= chr($state & 0xff);
    }
    return $s;
}

my %vec;
opendir(my $dh, $vectors) or die "$vectors: $!";
for my $f (sort grep { /\.bin$/ } readdir($dh)) {
    open(my $fh, '<:raw', "$vectors/$f") or die "$f: $!";
    local $/;
    (my $name = $f) =~ s/\.bin$//;
    $vec{$name} = <$fh>;
    close($fh);
}
closedir($dh);

# ---- fuzz_parser: config byte, split count, splits, wire bytes ----------

my %frames = (
    'ping_lower'     => "ping\r\npong\n+ok\r\n",
    'lenient'        => " \tMsG\tfoo.bar  7 \t r.x 3 \nabc\r\nPING \t\r\n",
    'msg_empty'      => "MSG a 1 0\r\n\r\n",
    'msg_crlf_body'  => "MSG a.b 99 _INBOX.z 4\r\n\r\n\r\n\r\n",
    'hmsg_status'    => "HMSG _INBOX.a.b 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
    'hmsg_desc'      => "HMSG s 2 r 40 42\r\nNATS/1.0 408 Request Timeout\r\n"
                        . "A: b\r\n\r\nhi\r\n",
    'err_forms'      => "-ERR 'Stale Connection'\r\n-ERR x\r\n-ERR\r\n"
                        . "-ERR 'missing\r\n",
    'info_small'     => "INFO {\"max_payload\":64,\"headers\":true,"
                        . "\"connect_urls\":[\"a:1\",\"b:2\"]} \r\n",
    'too_large'      => "MSG a 1 100\r\n" . ('x' x 100) . "\r\n",
    'bad_crlf'       => "MSG a 1 2\r\nabXY",
    'unknown_op'     => "PINGX\r\n",
    'partial_op'     => "H",
    'sid_overflow'   => "MSG a 18446744073709551616 1\r\nx\r\n",
);

for my $name (sort keys %vec) {
    put('fuzz_parser', "vec_$name", "\x00\x00" . $vec{$name});
    put('fuzz_parser', "vec_${name}_split",
        "\x00\x03\x00\x05\x80" . $vec{$name});
}
for my $name (sort keys %frames) {
    put('fuzz_parser', "frame_$name", "\x00\x00" . $frames{$name});
    put('fuzz_parser', "frame_${name}_mp64", "\x05\x01\x02" . $frames{$name});
}

# ---- fuzz_parser_structured and fuzz_framer: generator bytes ------------

for my $i (1 .. 12) {
    my $n = 32 << ($i % 5);
    put('fuzz_parser_structured', sprintf('gen_%02d', $i),
        "\x00\x00" . rnd_bytes($n));
    put('fuzz_parser_structured', sprintf('gen_%02d_split_mut', $i),
        "\x05" . rnd_bytes(8) . "\x02\x03\x81" . rnd_bytes($n));
    put('fuzz_framer', sprintf('gen_%02d', $i), rnd_bytes($n));
}
# one op of each kind with all-zero arguments: valid, short frames
for my $op (0 .. 7) {
    put('fuzz_framer', "op_$op", chr($op) . ("\x41" x 24));
}
for my $name (sort keys %vec) {
    put('fuzz_parser_structured', "vec_$name", "\x00\x00" . $vec{$name});
}

# ---- fuzz_headers: flags, split, block middle ---------------------------

for my $name (sort keys %vec) {
    my $wire = $vec{$name};
    while ($wire =~ /HMSG [^\r\n]*? (\d+) (\d+)\r\n/g) {
        my ($hdr, $pos) = ($1, pos($wire));
        my $block = substr($wire, $pos, $hdr);
        # flags 3: "NATS/1.0" prefix and CRLF CRLF suffix added back
        my $mid = substr($block, 8, length($block) - 12);
        put('fuzz_headers', "vec_$name", "\x03\x00" . $mid);
        put('fuzz_headers', "vec_${name}_raw", "\x00\x07" . $block);
    }
}
my %blocks = (
    'status_desc'   => " 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\n"
                       . "Nats-Last-Stream: 9",
    'multi'         => "\r\nA: 1\r\nb:2\r\nA:  3 \t\r\nEmpty:\r\nA: x: y",
    'empty'         => "",
    'bad_name'      => "\r\nBad Key: v",
    'no_colon'      => "\r\nNoColon",
    'status_only'   => " 503",
);
for my $name (sort keys %blocks) {
    put('fuzz_headers', "block_$name", "\x03\x00" . $blocks{$name});
}

# ---- fuzz_json: mode byte, text -----------------------------------------

for my $name (sort keys %vec) {
    if ($vec{$name} =~ /^INFO\s+(\{.*\})\s*\r\n/m) {
        put('fuzz_json', "info_$name", "\x00" . $1);
    }
}
my %docs = (
    'nested'   => '{"a":[1,-2.5e+3,0,true,false,null,{"b":{}}],"c":"\\u00e9"}',
    'numbers'  => '[0,-0,18446744073709551615,18446744073709551616,'
                  . '-9223372036854775808,9223372036854775807,1e5,0.5]',
    'escapes'  => '"\\"\\\\\\/\\b\\f\\n\\r\\t\\ud83d\\ude00\\u0041"',
    'dup_keys' => '{"max_payload":1,"max_payload":2,"headers":true}',
    'deep'     => ('[' x 64) . (']' x 64),
    'too_deep' => ('[' x 65) . (']' x 65),
);
for my $name (sort keys %docs) {
    put('fuzz_json', "doc_$name", "\x00" . $docs{$name});
}
put('fuzz_json', 'escape_ctl', "\x01" . join('', map { chr } 0 .. 0x21)
    . "\"\\\x7f\x80\xff");
put('fuzz_json', 'escape_text', "\x01" . "pass\"word\r\n");

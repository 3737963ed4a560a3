#!/usr/bin/env perl
# Keeps the ffi.cdef block of lua/resty/nats/core.lua identical to the part of
# src/resty_nats.h between "cdef begin" and "cdef end".
#   cdef.pl --write   copies the header's part into core.lua
#   cdef.pl --check   exits 1 (with a diff hint) when they differ
use strict;
use warnings;
use FindBin;

my $repo = "$FindBin::Bin/..";
my $mode = shift // '--check';

sub slurp { local $/; open my $f, '<', $_[0] or die "$_[0]: $!"; <$f> }

my $h = slurp("$repo/src/resty_nats.h");
my ($cdef) = $h =~ m{/\* cdef begin \*/\n(.*?)\n/\* cdef end \*/}s
    or die "no cdef section in resty_nats.h\n";

my $lua = slurp("$repo/lua/resty/nats/core.lua");
my $re = qr{(    ffi\.cdef\[\[\n)(.*?)(\n\]\]\n)}s;
my ($cur) = $lua =~ $re or die "no ffi.cdef[[ ]] block in core.lua\n";
$cur = (($lua =~ $re)[1]);

if ($mode eq '--write') {
    $lua =~ s/$re/$1$cdef$3/ or die;
    open my $f, '>', "$repo/lua/resty/nats/core.lua" or die $!;
    print $f $lua;
    print "cdef written\n";
    exit 0;
}

if ($cur ne $cdef) {
    print "lua/resty/nats/core.lua's ffi.cdef differs from src/resty_nats.h:"
        . " run scripts/cdef.pl --write\n";
    exit 1;
}
print "cdef in sync\n";

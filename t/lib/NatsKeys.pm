package NatsKeys;

# Test-time NATS user nkeys, made with openssl (Ed25519) and encoded as
# nkeys are (base32 of prefix + key + CRC-16/XMODEM, little-endian):
#   my ($seed, $public) = NatsKeys::user_pair();

use strict;
use warnings;

use File::Temp ();

my @B32 = ('A' .. 'Z', '2' .. '7');

sub crc16 {
    my $crc = 0;
    for my $b (unpack 'C*', shift) {
        $crc ^= $b << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                                 : ($crc << 1) & 0xffff;
        }
    }
    return $crc;
}

sub b32 {
    my $bits = unpack 'B*', shift;
    $bits .= '0' x ((5 - length($bits) % 5) % 5);
    return join '', map { $B32[oct "0b$_"] } $bits =~ /(.{5})/g;
}

sub encode {
    my ($prefix, $key) = @_;
    my $body = $prefix . $key;
    return b32($body . pack('v', crc16($body)));
}

sub user_pair {
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    open my $r, '<:raw', '/dev/urandom' or die $!;
    read $r, my $seed, 32;
    close $r;

    open my $f, '>:raw', "$dir/k.der" or die $!;
    print $f pack('H*', '302e020100300506032b657004220420') . $seed;
    close $f;
    system('openssl', 'pkey', '-inform', 'DER', '-in', "$dir/k.der",
           '-pubout', '-outform', 'DER', '-out', "$dir/p.der") == 0
        or die "openssl pkey failed\n";
    open my $p, '<:raw', "$dir/p.der" or die $!;
    local $/;
    my $der = <$p>;
    close $p;
    my $pub = substr($der, -32);

    # seed: 'S' + 'U' type bits; public: 'U'
    return (encode(pack('CC', 18 << 3 | (20 << 3) >> 5, ((20 << 3) & 31) << 3),
                   $seed),
            encode(pack('C', 20 << 3), $pub));
}

1;

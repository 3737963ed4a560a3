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

my %Type = (operator => 14 << 3, account => 0, user => 20 << 3);
my %RawSeed;    # seed string -> 32 raw bytes, for sign()

sub slurp_raw {
    open my $fh, '<:raw', $_[0] or die "$_[0]: $!";
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

sub key_der {
    my ($dir, $raw) = @_;
    open my $f, '>:raw', "$dir/k.der" or die $!;
    print $f pack('H*', '302e020100300506032b657004220420') . $raw;
    close $f;
    return "$dir/k.der";
}

# (seed, public key) of a new nkey of that type (user by default)
sub pair {
    my $type = $Type{ shift || 'user' };
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    open my $r, '<:raw', '/dev/urandom' or die $!;
    read $r, my $raw, 32;
    close $r;

    my $der = key_der($dir, $raw);
    system('openssl', 'pkey', '-inform', 'DER', '-in', $der,
           '-pubout', '-outform', 'DER', '-out', "$dir/p.der") == 0
        or die "openssl pkey failed\n";
    my $pub = substr(slurp_raw("$dir/p.der"), -32);

    my $seed = encode(pack('CC', (18 << 3) | ($type >> 5),
                           ($type & 31) << 3), $raw);
    $RawSeed{$seed} = $raw;
    return ($seed, encode(pack('C', $type), $pub));
}

sub user_pair { pair('user') }

# Ed25519 signature of $data with a seed made by pair()
sub sign {
    my ($seed, $data) = @_;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $der = key_der($dir, $RawSeed{$seed} // die "unknown seed\n");
    open my $f, '>:raw', "$dir/data" or die $!;
    print $f $data;
    close $f;
    system('openssl', 'pkeyutl', '-sign', '-rawin', '-keyform', 'DER',
           '-inkey', $der, '-in', "$dir/data", '-out', "$dir/sig") == 0
        or die "openssl pkeyutl failed\n";
    return slurp_raw("$dir/sig");
}

sub b64url {
    require MIME::Base64;
    my $b = MIME::Base64::encode_base64(shift, '');
    $b =~ tr{+/}{-_};
    $b =~ s/=+$//;
    return $b;
}

# a NATS JWT (v2) with these claims, signed by the issuer's seed
sub jwt {
    my ($issuer_seed, $issuer_pub, $sub, $name, $nats) = @_;
    my $header = '{"typ":"JWT","alg":"ed25519-nkey"}';
    my $jti = b32(pack('N*', map { int rand 2**32 } 1 .. 8));
    my $claims = sprintf '{"jti":"%s","iat":%d,"iss":"%s","name":"%s",'
                         . '"sub":"%s","nats":%s}',
                         $jti, time, $issuer_pub, $name, $sub, $nats;
    my $signing = b64url($header) . '.' . b64url($claims);
    return $signing . '.' . b64url(sign($issuer_seed, $signing));
}

# an operator-mode set-up: returns (server configuration text, creds text)
sub operator_setup {
    my ($op_seed, $op_pub) = pair('operator');
    my ($acc_seed, $acc_pub) = pair('account');
    my ($user_seed, $user_pub) = pair('user');

    my $op_jwt = jwt($op_seed, $op_pub, $op_pub, 'test-operator',
                     '{"type":"operator","version":2}');
    my $acc_jwt = jwt($op_seed, $op_pub, $acc_pub, 'test-account',
        '{"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,'
        . '"exports":-1,"wildcards":true,"conn":-1,"leaf":-1},'
        . '"default_permissions":{"pub":{},"sub":{}},'
        . '"type":"account","version":2}');
    my $user_jwt = jwt($acc_seed, $acc_pub, $user_pub, 'test-user',
        '{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,'
        . '"type":"user","version":2}');

    my $conf = qq{operator: "$op_jwt"\nresolver: MEMORY\n}
             . qq{resolver_preload: {\n    $acc_pub: "$acc_jwt"\n}\n};
    my $creds = "-----BEGIN NATS USER JWT-----\n$user_jwt\n"
              . "------END NATS USER JWT------\n\n"
              . "************************* IMPORTANT *************************\n"
              . "NKEY Seed printed below can be used to sign and prove identity.\n\n"
              . "-----BEGIN USER NKEY SEED-----\n$user_seed\n"
              . "------END USER NKEY SEED------\n";
    return ($conf, $creds);
}

1;

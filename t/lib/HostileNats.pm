package HostileNats;

# Scripted hostile servers for t/015-hostile.t and t/018-timeouts.t: one
# listener per scenario on a free loopback port, each connection served by
# a child that plays the scenario's steps whatever the client sends (what
# the client sends is read and thrown away, so its writes never block).
#
#   my $ports = HostileNats->start(\%scenarios);  # { name => port }
#       (each port also in $ENV{TEST_NGINX_HOSTILE_<NAME>})
#   HostileNats->stop;                             # also at END
#
# Steps:
#   ['handshake']              send INFO, read up to the client's PING,
#                              answer PONG
#   [send => $bytes]
#   [dribble => $bytes, $secs] one byte every $secs seconds
#   [sleep => $secs]           (reading and discarding meanwhile)
#   [await_client => $secs]    wait until the client sends something (a
#                              server that wants the client to speak
#                              first); close if it does not within $secs
#   ['close']                  close the connection now
# After the last step the connection stays open (still discarding) until
# the client closes it or 30 s pass.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time);

our $Info = 'INFO {"server_id":"HOSTILE","version":"2.9.10","proto":1,'
            . '"headers":true,"max_payload":1048576}' . "\r\n";

my @Pids;

sub start {
    my ($class, $scenarios) = @_;
    my %ports;

    for my $name (sort keys %$scenarios) {
        my $listen = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
            ReuseAddr => 1, Proto => 'tcp',
        ) or die "HostileNats: cannot listen: $!\n";
        $ports{$name} = $listen->sockport;
        $ENV{"TEST_NGINX_HOSTILE_" . uc $name} = $ports{$name};

        my $pid = fork();
        die "HostileNats: fork: $!\n" unless defined $pid;
        if ($pid == 0) {
            $SIG{CHLD} = 'IGNORE';
            $SIG{PIPE} = 'IGNORE';
            $SIG{TERM} = sub { POSIX::_exit(0) };
            alarm 600;    # never outlive a test run
            while (1) {
                my $c = $listen->accept or next;
                my $child = fork();
                if (defined $child && $child == 0) {
                    $listen->close;
                    alarm 60;
                    eval { play($c, $scenarios->{$name}) };
                    POSIX::_exit(0);
                }
                $c->close;
            }
        }
        $listen->close;
        push @Pids, $pid;
    }

    return \%ports;
}

sub stop {
    for my $pid (@Pids) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
    @Pids = ();
}

END { local $?; stop() }

# reads and discards for $secs seconds; false once the client has gone
sub discard {
    my ($c, $secs, $buf) = @_;
    my $sel = IO::Select->new($c);
    my $deadline = time + $secs;
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread($c, my $chunk, 65536);
        return 0 unless $n;
        $$buf .= $chunk if $buf;
    }
    return 1;
}

sub play {
    my ($c, $steps) = @_;
    my $in = '';

    for my $step (@$steps) {
        my ($op, @a) = @$step;
        if ($op eq 'handshake') {
            syswrite $c, $Info;
            my $deadline = time + 5;
            while ($in !~ /PING\r\n/) {
                return if time > $deadline;
                return unless discard($c, 0.05, \$in);
            }
            syswrite $c, "PONG\r\n";
        } elsif ($op eq 'send') {
            my $off = 0;
            while ($off < length $a[0]) {
                my $n = syswrite $c, $a[0], 65536, $off;
                return unless defined $n;
                $off += $n;
            }
        } elsif ($op eq 'dribble') {
            for my $byte (split //, $a[0]) {
                return unless defined syswrite $c, $byte;
                return unless discard($c, $a[1]);
            }
        } elsif ($op eq 'sleep') {
            return unless discard($c, $a[0]);
        } elsif ($op eq 'await_client') {
            my $sel = IO::Select->new($c);
            return unless $sel->can_read($a[0]);
            return unless sysread($c, my $chunk, 65536);
        } elsif ($op eq 'close') {
            return;
        }
    }

    discard($c, 30);
}

1;

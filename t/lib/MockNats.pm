package MockNats;

# A scripted NATS server for the pooled-connection suites: it does a real
# handshake, then plays a scenario chosen by the client's CONNECT name,
# with delays between the bytes it sends to an idle (pooled) connection,
# something Test::Nginx's embedded TCP server cannot do.
#
#   my $mock = MockNats->start($port, \%scenarios);   # forks, returns
#   $mock->stop;                                      # also at END
#
# A scenario is a list of steps run on the FIRST connection with that
# name, after its handshake:
#   [sleep => $seconds]
#   [send => $bytes]
#   [expect => $bytes, $timeout]   read exactly these bytes, else close
#   [expect_eof => $timeout]       the client must close the connection
#   [close => 1]                   the server closes the connection
# Then (and on every later connection with that name, right after the
# handshake) the connection serves a tiny echo protocol: SUB, PUB (a
# message published to a subscribed subject comes back as MSG), PING.
# Anything else, or any byte out of place, closes it.
#
# Outcomes are appended to "$dir/<name>.log", one word a line:
# "handshake", "step-ok", "step-failed <why>", "eof", "echo".

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use POSIX ();
use File::Temp ();
use Time::HiRes qw(sleep time);

my @Running;

sub start {
    my ($class, $port, $scenarios) = @_;

    my $dir = File::Temp::tempdir('mock-nats-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 16,
        ReuseAddr => 1, Proto => 'tcp',
    ) or die "MockNats: cannot listen on 127.0.0.1:$port: $!\n";

    my $pid = fork();
    die "MockNats: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        $SIG{TERM} = sub { POSIX::_exit(0) };
        # never outlive a test run
        alarm 600;
        while (1) {
            my $c = $listen->accept or next;
            my $child = fork();
            if (defined $child && $child == 0) {
                $listen->close;
                alarm 60;
                eval { serve($c, $dir, $scenarios) };
                POSIX::_exit(0);
            }
            $c->close;
        }
    }

    $listen->close;
    my $self = bless { pid => $pid, dir => $dir, port => $port }, $class;
    push @Running, $self;
    return $self;
}

sub dir { $_[0]{dir} }

sub stop {
    my $self = shift;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    $self->{pid} = 0;
}

END { local $?; $_->stop for @Running }


sub note_outcome {
    my ($dir, $name, $what) = @_;
    open my $fh, '>>', "$dir/$name.log" or return;
    print $fh "$what\n";
    close $fh;
}

# reads until $want bytes arrived or $timeout passed; returns the bytes
sub read_exact {
    my ($c, $want, $timeout, $buf) = @_;
    my $sel = IO::Select->new($c);
    my $deadline = time + $timeout;
    while (length($$buf) < $want) {
        my $left = $deadline - time;
        return 0 if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($c, my $chunk, 65536);
        return 0 if !$n;
        $$buf .= $chunk;
    }
    return 1;
}

sub read_line {
    my ($c, $buf, $timeout) = @_;
    my $sel = IO::Select->new($c);
    my $deadline = time + $timeout;
    while ($$buf !~ /\r\n/) {
        my $left = $deadline - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($c, my $chunk, 65536);
        return undef if !$n;
        $$buf .= $chunk;
    }
    $$buf =~ s/^(.*?)\r\n//s;
    return $1;
}

sub serve {
    my ($c, $dir, $scenarios) = @_;

    $c->autoflush(1);
    syswrite $c, 'INFO {"server_id":"MOCKNATS","version":"2.9.10",'
                 . '"proto":1,"headers":true,"max_payload":1048576}'
                 . "\r\n";

    my $buf = '';
    my $line = read_line($c, \$buf, 5);
    return unless defined $line && $line =~ /^CONNECT (\{.*\})$/;
    my ($name) = $1 =~ /"name":"([^"]*)"/;
    $name = 'unnamed' unless defined $name && length $name;
    $line = read_line($c, \$buf, 5);
    return unless defined $line && $line eq 'PING';
    syswrite $c, "PONG\r\n";

    # which connection of this name is this one?
    open my $cnt, '>>', "$dir/$name.count" or return;
    print $cnt "x";
    close $cnt;
    my $index = -s "$dir/$name.count";
    note_outcome($dir, $name, "handshake $index");

    my $steps = $index == 1 ? ($scenarios->{$name} || []) : [];
    for my $step (@$steps) {
        my ($op, @a) = @$step;
        if ($op eq 'sleep') {
            sleep $a[0];
        } elsif ($op eq 'close') {
            return;
        } elsif ($op eq 'send') {
            syswrite $c, $a[0];
        } elsif ($op eq 'expect') {
            if (!read_exact($c, length $a[0], $a[1], \$buf)
                || substr($buf, 0, length $a[0]) ne $a[0])
            {
                (my $got = $buf) =~ s/\r\n/\\r\\n/g;
                note_outcome($dir, $name, "step-failed expected "
                             . length($a[0]) . " bytes, got [$got]");
                return;
            }
            substr($buf, 0, length $a[0], '');
            note_outcome($dir, $name, 'step-ok');
        } elsif ($op eq 'expect_eof') {
            my $sel = IO::Select->new($c);
            my $deadline = time + $a[0];
            while (1) {
                my $left = $deadline - time;
                if ($left <= 0 || !$sel->can_read($left)) {
                    note_outcome($dir, $name, 'step-failed still open');
                    return;
                }
                my $n = sysread($c, my $chunk, 65536);
                if (!$n) {
                    note_outcome($dir, $name, 'eof');
                    return;
                }
                $buf .= $chunk;
            }
        }
    }

    # echo mode
    my %subs;
    while (defined(my $l = read_line($c, \$buf, 30))) {
        if ($l =~ /^SUB (\S+) (\S+)$/) {
            $subs{$1} = $2;
        } elsif ($l =~ /^UNSUB (\S+)/) {
            my $sid = $1;
            delete @subs{ grep { $subs{$_} eq $sid } keys %subs };
        } elsif ($l eq 'PING') {
            syswrite $c, "PONG\r\n";
        } elsif ($l =~ /^PUB (\S+) (\d+)$/) {
            my ($subj, $len) = ($1, $2);
            return unless read_exact($c, $len + 2, 5, \$buf);
            my $payload = substr($buf, 0, $len);
            substr($buf, 0, $len + 2, '');
            if (defined $subs{$subj}) {
                syswrite $c, "MSG $subj $subs{$subj} $len\r\n$payload\r\n";
                note_outcome($dir, $name, 'echo');
            }
        } else {
            (my $bad = $l) =~ s/[^\x20-\x7e]/?/g;
            note_outcome($dir, $name, "unexpected [$bad]");
            return;
        }
    }
}

1;

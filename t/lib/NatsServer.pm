package NatsServer;

# Starts a nats-server of a suite's own, with its own configuration, on
# free loopback ports, for the life of the test file:
#
#   my $s = NatsServer->start(conf => <<'CONF', ports => [qw(port mon)]);
#   listen: 127.0.0.1:$port
#   http: 127.0.0.1:$mon
#   CONF
#   $s->port('port'); $s->log_file; $s->stop; $s->restart;
#
# Every "$name" of ports in the configuration is replaced by a free port.
# Servers are stopped at END.

use strict;
use warnings;

use File::Temp ();
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);

my @Running;

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die "no port: $!";
    return $s->sockport;
}

sub new_dir {
    return File::Temp::tempdir('nats-server-XXXXXX', TMPDIR => 1,
                               CLEANUP => 1);
}

sub start {
    my ($class, %a) = @_;
    my $self = bless { dir => $a{dir} || new_dir(), ports => {} }, $class;
    for my $p (@{ $a{ports} || ['port'] }) {
        $self->{ports}{$p} = $a{port_values}{$p} || free_port();
    }
    my $conf = $a{conf};
    for my $p (keys %{ $self->{ports} }) {
        $conf =~ s/\$\Q$p\E\b/$self->{ports}{$p}/g;
    }
    $conf =~ s/\$dir\b/$self->{dir}/g;
    $self->{name} = $a{name} || 'nats';
    $self->{conf_file} = "$self->{dir}/$self->{name}.conf";
    open my $fh, '>', $self->{conf_file} or die $!;
    print $fh $conf;
    close $fh;
    $self->{wait_port} = $a{wait_port} || 'port';
    $self->restart;
    push @Running, $self;
    return $self;
}

sub restart {
    my $self = shift;
    $self->stop if $self->{pid};
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', $self->log_file;
        open STDERR, '>&', \*STDOUT;
        { exec 'nats-server', '-c', $self->{conf_file}, '-l', $self->log_file; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    my $port = $self->{ports}{ $self->{wait_port} };
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port);
        return $self if $s;
        sleep 0.1;
    }
    die "nats-server ($self->{conf_file}) did not start, see "
        . $self->log_file . "\n";
}

sub port { $_[0]{ports}{ $_[1] || 'port' } }
sub dir { $_[0]{dir} }
sub log_file { "$_[0]{dir}/$_[0]{name}.log" }

sub stop {
    my $self = shift;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    $self->{pid} = 0;
}

END { local $?; $_->stop for @Running }

1;

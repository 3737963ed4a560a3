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
# A server that the handlers of a suite stop, kill and start again,
# through a control process that answers "stop", "kill", "start",
# "pause" (SIGSTOP) and "resume" (SIGCONT) (one line each, answered
# "ok <cmd>") on a control port:
#
#   my ($port, $ctl_port) = NatsServer->controlled(name => 'faulty');
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
my @Controllers;

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

# the configuration of a JetStream server of a suite (for start or
# controlled): listens on $port, stores under $dir; memory => '64MB' and
# file => '256MB' (a limit of 0 or undef leaves that storage unlimited)
sub js_conf {
    my (%a) = @_;
    my %lim = (memory => '64MB', file => '256MB', %a);
    my $conf = "listen: 127.0.0.1:\$port\njetstream {\n"
               . "    store_dir: \"\$dir/store\"\n";
    $conf .= "    max_memory_store: $lim{memory}\n" if $lim{memory};
    $conf .= "    max_file_store: $lim{file}\n" if $lim{file};
    return $conf . "}\n" . ($a{extra} || '');
}

sub controlled {
    my ($class, %a) = @_;
    my $port = free_port();
    my $ctl_port = free_port();
    my $dir = new_dir();
    my $name = $a{name} || 'controlled';
    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $ctl_port, Listen => 8,
        ReuseAddr => 1) or die "control port: $!";
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        @Running = ();
        my $s = $class->start(name => $name, dir => $dir,
                              port_values => { port => $port },
                              conf => $a{conf}
                                      || "listen: 127.0.0.1:\$port\n");
        $SIG{TERM} = sub { $s->stop; POSIX::_exit(0) };
        alarm 900;
        while (my $c = $listen->accept) {
            while (defined(my $cmd = <$c>)) {
                $cmd =~ s/\s+$//;
                if ($cmd eq 'stop') {
                    $s->stop;
                } elsif ($cmd eq 'kill') {
                    kill 'KILL', $s->{pid} if $s->{pid};
                    waitpid $s->{pid}, 0 if $s->{pid};
                    $s->{pid} = 0;
                } elsif ($cmd eq 'pause') {
                    kill 'STOP', $s->{pid} if $s->{pid};
                } elsif ($cmd eq 'resume') {
                    kill 'CONT', $s->{pid} if $s->{pid};
                } elsif ($cmd eq 'start') {
                    eval { $s->restart; 1 } or do {
                        print $c "failed: $@\n";
                        next;
                    };
                }
                print $c "ok $cmd\n";
            }
            close $c;
        }
        $s->stop;
        POSIX::_exit(0);
    }
    close $listen;
    push @Controllers, $pid;
    for (1 .. 100) {
        last if IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port);
        sleep 0.1;
    }
    return ($port, $ctl_port);
}

END {
    local $?;
    $_->stop for @Running;
    for my $pid (@Controllers) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}

1;

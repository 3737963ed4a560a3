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
# through a control process that answers one command a line on a control
# port (t/lua/t_ctl.lua; NatsServer::ctl from Perl), "ok <cmd>" when done
# or "failed: <why>":
#
#   stop        SIGTERM, and waits for the exit
#   kill        SIGKILL, and waits for the exit
#   start       starts it again (same configuration, ports and directory:
#               a JetStream store is kept), once its client port accepts
#   pause       SIGSTOP
#   resume      SIGCONT
#   ldm         SIGUSR2 (lame duck mode, as nats-server --signal ldm=PID),
#               answered once the process has exited (after
#               lame_duck_grace_period and the closing of its clients,
#               lame_duck_duration at most); "failed: ..." and a SIGKILL
#               when it is still there after 60 s
#   ldm-async   SIGUSR2, answered at once (then "wait")
#   wait        waits for the process to exit (60 s, as ldm)
#   healthy     waits (60 s) until the monitor port's /healthz says ok
#               (JetStream current: meta leader known, every stream and
#               consumer of this node caught up) and, with routes => N,
#               /routez shows N routes; needs the "mon" port
#   pid         "ok pid <pid>" (0 when not running)
#
#   my ($port, $ctl_port) = NatsServer->controlled(name => 'faulty');
#   my ($port, $ctl_port) = NatsServer->controlled(name => 'x',
#       ports => [qw(port mon)], port_values => { port => 4222 },
#       conf => "listen: 127.0.0.1:\$port\nhttp: 127.0.0.1:\$mon\n");
#
# A cluster of controlled servers (routes between all of them, lame duck
# settings, JetStream with js => 1), started and healthy on return:
#
#   my @nodes = NatsServer->cluster(n => 3, js => 1, grace => '2s');
#
# See cluster below for what it exports to the suite (TEST_NGINX_NODE1_PORT,
# ..._MON_PORT, ..._CTL_PORT, ...).
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

# GET path on the loopback port: the body, or undef
sub http_get {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 5) or return undef;
    print $s "GET $path HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    local $/;
    my $r = <$s>;
    close $s;
    return undef unless defined $r && $r =~ /\r\n\r\n(.*)\z/s;
    return $1;
}

# waits up to secs for pid to exit; true when it did
sub wait_exit {
    my ($pid, $secs) = @_;
    for (1 .. $secs * 50) {
        return 1 if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.02;
    }
    return 0;
}

# server s healthy: /healthz ok and, when routes is given, that many routes
# in /routez; '' when so, else what was seen last
sub health {
    my ($s, $routes) = @_;
    my $mon = $s->{ports}{mon} or return 'no monitor port (mon)';
    my $h = http_get($mon, '/healthz');
    return 'healthz: ' . (defined $h ? $h : 'no answer')
        unless defined $h && $h =~ /"status"\s*:\s*"ok"/;
    if ($routes) {
        my $r = http_get($mon, '/routez');
        my ($n) = (defined $r ? $r : '') =~ /"num_routes"\s*:\s*(\d+)/;
        return 'routes: ' . (defined $n ? $n : 'unknown') . " of $routes"
            unless defined $n && $n >= $routes;
    }
    return '';
}

# one command to a control port (as t/lua/t_ctl.lua): its answer line
sub ctl {
    my ($ctl_port, $cmd) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ctl_port)
        or die "control port $ctl_port: $!";
    print $c "$cmd\n";
    my $line = <$c>;
    close $c;
    $line = '' unless defined $line;
    $line =~ s/\s+$//;
    return $line;
}

sub controlled {
    my ($class, %a) = @_;
    my %pv = %{ $a{port_values} || {} };
    my @ports = @{ $a{ports} || ['port'] };
    unshift @ports, 'port' unless grep { $_ eq 'port' } @ports;
    $pv{$_} ||= free_port() for @ports;
    my $port = $pv{port};
    my $ctl_port = $a{ctl_port} || free_port();
    my $dir = $a{dir} || new_dir();
    my $name = $a{name} || 'controlled';
    my $routes = $a{routes};
    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $ctl_port, Listen => 8,
        ReuseAddr => 1) or die "control port: $!";
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        @Running = ();
        @Controllers = ();
        my $s = eval {
            $class->start(name => $name, dir => $dir,
                          ports => \@ports, port_values => \%pv,
                          conf => $a{conf} || "listen: 127.0.0.1:\$port\n");
        } or do {
            warn $@;
            POSIX::_exit(1);
        };
        $SIG{TERM} = sub { $s->stop; POSIX::_exit(0) };
        alarm 900;
        while (my $c = $listen->accept) {
            while (defined(my $cmd = <$c>)) {
                $cmd =~ s/\s+$//;
                my $answer = "ok $cmd";
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
                    eval { $s->restart; 1 } or $answer = "failed: $@";
                } elsif ($cmd eq 'ldm' || $cmd eq 'ldm-async'
                         || $cmd eq 'wait') {
                    if (!$s->{pid}) {
                        $answer = "failed: not running";
                    } else {
                        kill 'USR2', $s->{pid} if $cmd ne 'wait';
                        if ($cmd ne 'ldm-async') {
                            if (wait_exit($s->{pid}, 60)) {
                                $s->{pid} = 0;
                            } else {
                                kill 'KILL', $s->{pid};
                                waitpid $s->{pid}, 0;
                                $s->{pid} = 0;
                                $answer = "failed: still running after 60 s"
                                          . " (killed)";
                            }
                        }
                    }
                } elsif ($cmd eq 'healthy') {
                    my $why = 'not running';
                    for (1 .. 600) {
                        last unless $s->{pid};
                        $why = health($s, $routes);
                        last if $why eq '';
                        sleep 0.1;
                    }
                    $answer = "failed: $why" if $why ne '';
                } elsif ($cmd eq 'pid') {
                    $answer = "ok pid " . ($s->{pid} || 0);
                } else {
                    $answer = "failed: unknown command";
                }
                $answer =~ s/\s+$//;
                $answer =~ s/\n/ /g;
                print $c "$answer\n";
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
    return wantarray ? ($port, $ctl_port)
                     : { name => $name, ctl => $ctl_port, dir => $dir,
                         ports => \%pv, port => $port };
}

# A cluster of n controlled servers named node1..nodeN: every one with a
# client port, a monitor port (http) and a route port, routes to all,
# lame_duck_grace_period grace (default "2s") and lame_duck_duration
# duration (default "30s", the least nats-server 2.9 accepts); with js, a
# JetStream store of its own (kept across restarts; memory and file
# limits as js_conf: memory => '64MB', file => '256MB'). extra: more
# configuration for every node. Waits until every node is healthy (its
# /healthz ok, all routes up), dies otherwise.
#
# Exports, with env => 'NODE' (the default) and i = 1..n:
# TEST_NGINX_NODEi_PORT, TEST_NGINX_NODEi_MON_PORT,
# TEST_NGINX_NODEi_ROUTE_PORT, TEST_NGINX_NODEi_CTL_PORT, and
# TEST_NGINX_NODE_URLS ("nats://127.0.0.1:p1,nats://127.0.0.1:p2,...").
# Returns the nodes: { name, port, mon, cport, ctl, dir }.
#
# What nats-server 2.9.10 does on SIGUSR2 (measured here, grace "2s"):
# it closes its client listener and sends every client an INFO with
# "ldm": true at once (its connect_urls: the other nodes, not itself),
# shuts its JetStream down (stream leaders move), closes the first client
# after the grace period and the others about 0.5-0.9 s apart (the 30 s
# lame_duck_duration spread over them, at most 1 s each), and exits right
# after the last: "ldm" is answered after 0-1 s with no client, 2.0 s
# with 1, 3.0 s with 3, 5.1 s with 6. Started again, /healthz is ok
# 0.2-1 s later (with an R3 stream of a few thousand messages to catch
# up), its routes up.
sub cluster {
    my ($class, %a) = @_;
    my $n = $a{n} || 3;
    my $env = $a{env} || 'NODE';
    my $grace = $a{grace} || '2s';
    my $duration = $a{duration} || '30s';
    my $cname = $a{cluster_name} || 'rolling';
    my (@port, @mon, @cport);
    for (1 .. $n) {
        push @port, free_port();
        push @mon, free_port();
        push @cport, free_port();
    }
    my $routes = join ', ', map { "nats-route://127.0.0.1:$_" } @cport;
    my %lim = (memory => '64MB', file => '256MB', %a);
    my @nodes;
    for my $i (1 .. $n) {
        my $conf = <<CONF;
server_name: node$i
listen: 127.0.0.1:\$port
http: 127.0.0.1:\$mon
lame_duck_grace_period: "$grace"
lame_duck_duration: "$duration"
cluster {
    name: $cname
    listen: 127.0.0.1:\$cport
    routes: [ $routes ]
}
CONF
        if ($a{js}) {
            $conf .= "jetstream {\n    store_dir: \"\$dir/store\"\n";
            $conf .= "    max_memory_store: $lim{memory}\n" if $lim{memory};
            $conf .= "    max_file_store: $lim{file}\n" if $lim{file};
            $conf .= "}\n";
        }
        $conf .= $a{extra} if $a{extra};
        my $node = $class->controlled(
            name => "node$i", conf => $conf, routes => $n - 1,
            ports => [qw(port mon cport)],
            port_values => { port => $port[$i - 1], mon => $mon[$i - 1],
                             cport => $cport[$i - 1] });
        push @nodes, { name => "node$i", port => $port[$i - 1],
                       mon => $mon[$i - 1], cport => $cport[$i - 1],
                       ctl => $node->{ctl}, dir => $node->{dir} };
        $ENV{"TEST_NGINX_$env${i}_PORT"} = $port[$i - 1];
        $ENV{"TEST_NGINX_$env${i}_MON_PORT"} = $mon[$i - 1];
        $ENV{"TEST_NGINX_$env${i}_ROUTE_PORT"} = $cport[$i - 1];
        $ENV{"TEST_NGINX_$env${i}_CTL_PORT"} = $node->{ctl};
    }
    $ENV{"TEST_NGINX_${env}_URLS"} =
        join ',', map { "nats://127.0.0.1:$_" } @port;
    for my $node (@nodes) {
        my $r = ctl($node->{ctl}, 'healthy');
        die "cluster: $node->{name} is not healthy: $r (see $node->{dir})\n"
            unless $r eq 'ok healthy';
    }
    return @nodes;
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

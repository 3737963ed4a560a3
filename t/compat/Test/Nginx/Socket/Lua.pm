package Test::Nginx::Socket::Lua;

# lua-resty-nats: small Test::Nginx::Socket::Lua compatible test runner.
#
# Built on Test::Base (the block parser the real Test::Nginx uses), so the
# block syntax, filters (eval, chomp, ...) and the ONLY / SKIP / LAST meta
# sections behave exactly as under openresty/test-nginx.  The sections it
# understands and the way it counts tests follow the real
# Test::Nginx::Socket; see t/README.md for the list and known differences.
#
# It is our own code.  It is only put on @INC when the real
# Test::Nginx::Socket::Lua is not installed (t/lib/TestNats.pm does that).

use Test::Base -base;

use Encode ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EADDRINUSE);
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use File::Temp ();
use HTTP::Response ();
use List::Util ();
use POSIX ();
use Scalar::Util qw(looks_like_number);
use Socket qw(SOCK_STREAM SOCK_DGRAM);
use Test::LongString ();
use Time::HiRes ();

use Test::Nginx::Util;

our $VERSION = '0.01';
our $IsCompat = 1;

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections
    master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location use_hup
    server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler add_cleanup_handler
    add_response_body_check
);

our @ResponseBodyChecks;
our $TotalConnectingTimeouts = 0;

sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

sub set_http_config_filter ($) { $Test::Nginx::Util::FilterHttpConfig = shift }

# TEST_NGINX_INIT_BY_LUA: inject Lua code into init_by_lua(_block), or add
# an init_by_lua directive when the block has none.
if (defined $ENV{TEST_NGINX_INIT_BY_LUA} && length $ENV{TEST_NGINX_INIT_BY_LUA}) {
    my $code = $ENV{TEST_NGINX_INIT_BY_LUA};
    (my $quoted = $code) =~ s/\\/\\\\/g;
    $quoted =~ s/(['"])/\\$1/g;
    set_http_config_filter(sub {
        my $c = shift;
        return $c if $c =~ /init_by_lua_file/;
        return $c if $c =~ s~(?<![#])\binit_by_lua_block\s*[{]~init_by_lua_block { $code\n~s;
        return $c if $c =~ s~(?<![#])\binit_by_lua\s*(['"])~init_by_lua $1$quoted ~s;
        return $c . "\ninit_by_lua '$quoted';";
    });
}

sub _fail_no_ending ($) {
    Test::More->builder->no_ending(1);
    Test::More::fail($_[0]);
}

# ---------------------------------------------------------------------------
# main loop
# ---------------------------------------------------------------------------

sub run_tests () {
    $NginxVersion = Test::Nginx::Util::get_nginx_version();

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};

    my @blocks = Test::Base::blocks();
    @blocks = List::Util::shuffle(@blocks) unless $Test::Nginx::Util::NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @Test::Nginx::Util::BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
        $_->($block) for @Test::Nginx::Util::TestCleanupHandlers;
        $Test::Nginx::Util::PrevBlock = $block;
    }

    Test::Nginx::Util::cleanup();
}

# skip_eval / skip_nginx / skip_nginx2 / todo => (count, skip?, todo?, reason)
sub _skip_todo ($) {
    my $block = shift;
    my $name  = $block->name;
    my ($n, $skip, $todo, $reason);

    my $cmp = sub {
        my ($op, $a, $b, $c) = @_;
        my $want = sprintf('%d.%03d%03d', $a, $b, $c);
        my $have = $NginxVersion;
        return 0 unless defined $have;
        return $op eq '<'  ? $have <  $want
             : $op eq '<=' ? $have <= $want
             : $op eq '>'  ? $have >  $want
             :               $have >= $want;
    };

    if (defined(my $s = $block->skip_eval)) {
        if ($s =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $n = $1;
            $reason = 'skip_eval';
            my $code = $2;
            $skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$code\": $@")
                if $@;
        }
    }

    if (defined(my $s = $block->skip_nginx)) {
        $s =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx spec: $s");
        $n = $1;
        $reason = $6 || "nginx version $2 $3.$4.$5";
        $skip = 1 if $cmp->($2, $3, $4, $5);

    } elsif (defined(my $s2 = $block->skip_nginx2)) {
        $s2 =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)\s*(or|and)\s*
                 ([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx2 spec: $s2");
        $n = $1;
        $reason = $11;
        my $x = $cmp->($2, $3, $4, $5);
        my $y = $cmp->($7, $8, $9, $10);
        $skip = 1 if ($6 eq 'or' ? ($x || $y) : ($x && $y));
    }

    if (defined(my $t = $block->todo)) {
        $t =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $t");
        ($n, $todo, $reason) = ($1, 1, $2);
    }

    $reason = 'various reasons' unless defined $reason && length $reason;
    return ($n, $skip, $todo, $reason);
}

sub _start_nginx ($$) {
    my ($block, $cmd) = @_;
    my $name = $block->name;

    if ($Test::Nginx::Util::UseValgrind) {
        $cmd = Test::Nginx::Util::valgrind_prefix() . " $cmd";
        warn "$name\n";
        my $pid = fork();
        defined $pid or bail_out("$name - fork() failed: $!");
        if ($pid == 0) {
            $Test::Nginx::Util::InSubprocess = 1;
            setpgrp(0, 0);
            exec "exec $cmd" or POSIX::_exit(127);
        }
        $Test::Nginx::Util::ChildPid = $pid;
        Time::HiRes::sleep(Test::Nginx::Util::sleep_time());
        return;
    }

    my $waited = 0;
    while (1) {
        system("$cmd > /dev/null");
        my $status = $?;
        last if $status == 0;

        # retry only when the port is still held (previous nginx exiting)
        my $busy = 0;
        if (open my $in, '<', $Test::Nginx::Util::ErrLogFile) {
            local $/;
            my $log = <$in>;
            $busy = 1 if defined $log && $log =~ /Address already in use/;
        }
        if (!$busy || $waited >= 30) {
            bail_out("$name - Cannot start nginx using command \"$cmd\" "
                     . "(status code $status).");
        }
        Time::HiRes::sleep(0.2);
        $waited += 0.2;
    }
    Time::HiRes::sleep(Test::Nginx::Util::sleep_time());
}

sub _stop_running_nginx ($) {
    my $name = shift;
    my $child = $Test::Nginx::Util::ChildPid;
    if (-f $PidFile) {
        my $pid = get_pid_from_pidfile($name);
        if ($pid && (!defined $child || $pid != $child) && is_running($pid)) {
            Test::Nginx::Util::kill_process($pid, 1, $name);
        }
    }
    if (defined $child) {
        # nginx in the foreground under valgrind: our own child
        Test::Nginx::Util::kill_process($child, 1, $name);
        undef $Test::Nginx::Util::ChildPid;
    }
    unlink $PidFile if -f $PidFile;
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    my $first_time = $Test::Nginx::Util::FirstTime;
    undef $Test::Nginx::Util::FirstTime;

    my $rand_ports = {};
    $Test::Nginx::Util::RandPorts = $rand_ports;

    my $config = expand_env_in_text($block->config, $name, $rand_ports);

    local $Test::Nginx::Util::LogLevel = $Test::Nginx::Util::LogLevel;
    $Test::Nginx::Util::LogLevel = $block->log_level if $block->log_level;

    my $must_die = $block->must_die;
    local $Test::Nginx::Util::UseValgrind = $Test::Nginx::Util::UseValgrind;
    undef $Test::Nginx::Util::UseValgrind if defined $must_die;

    my $should_restart = 1;
    if (!defined $config) {
        if (!$Test::Nginx::Util::NoNginxManager
            && !defined $Test::Nginx::Util::PrevConfig)
        {
            bail_out("$name - No '--- config' section specified and could "
                     . "not get previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?");
        }
        $should_restart = 0;
    } elsif ($Test::Nginx::Util::NoNginxManager) {
        Test::More::diag("NO_NGINX_MANAGER activated: config for $name ignored");
        $should_restart = 0;
    } elsif (!$Test::Nginx::Util::ForceRestartOnTest
             && defined $Test::Nginx::Util::PrevConfig
             && $config eq $Test::Nginx::Util::PrevConfig)
    {
        $should_restart = 0;
    }

    my ($tests_to_skip, $should_skip, $should_todo, $reason) = _skip_todo($block);
    my $dry_run = 0;

    if (!$Test::Nginx::Util::NoNginxManager && !$should_skip && $should_restart) {
        $Test::Nginx::Util::PrevConfig = $config;

        _stop_running_nginx($name);
        check_prev_block_shutdown_error_log();

        Test::Nginx::Util::setup_server_root($first_time);
        if (defined(my $code = $block->post_setup_server_root)) {
            eval $code;
            bail_out("$name - post_setup_server_root failed: $@") if $@;
        }
        Test::Nginx::Util::write_user_files($block, $rand_ports);
        Test::Nginx::Util::write_config_file($block, $config, $rand_ports);

        Test::Nginx::Util::can_run($Test::Nginx::Util::NginxBinary)
            or bail_out("$name - Cannot find the nginx executable in the PATH environment");

        my $cmd = Test::Nginx::Util::nginx_command();
        $cmd .= ' 2> /dev/null' if defined $block->suppress_stderr;

        $Test::Nginx::Util::ErrLogFilePos = 0;

        if (defined $must_die) {
            for my $i (0 .. repeat_each() - 1) {
                system("$cmd > /dev/null");
                my $status = $?;
                my $exit_code = $status == -1 ? undef : $status >> 8;
                if ($status == -1) {
                    Test::More::fail("$name - failed to execute the nginx command line");
                } elsif ($status & 128) {
                    Test::More::fail("$name - nginx core dumped");
                } elsif (looks_like_number($must_die)) {
                    Test::More::is($must_die, $exit_code,
                                   "$name - die with the expected exit code");
                } else {
                    Test::More::isnt($status, 0, "$name - die as expected");
                }

                check_error_log($block, undef, $dry_run, $i, 0);

                if ($status == 0) {
                    warn "WARNING: $name - nginx must die but it does not; "
                       . "killing it (req $i)\n";
                    for (1 .. 15) {
                        last if -f $PidFile;
                        Time::HiRes::sleep(Test::Nginx::Util::sleep_time());
                    }
                    _stop_running_nginx($name);
                }
            }
            return;
        }

        _start_nginx($block, $cmd);
    }

    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    $Test::Nginx::Util::ErrLogFilePos = 0;

    for my $i (1 .. repeat_each()) {
        my ($tcp_sock, $tcp_query_file) = _start_tcp_server($block, $rand_ports);
        my ($udp_sock, $udp_query_file, $uds_file) =
            _start_udp_server($block, $rand_ports);

        Test::Nginx::Util::write_user_files($block, $rand_ports) if $i > 1;

        my $run = sub {
            run_test_helper($block, $dry_run, $i - 1);
            _run_tcp_server_tests($block, $tcp_sock, $tcp_query_file);
            _run_udp_server_tests($block, $udp_sock, $udp_query_file);
        };

        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $reason", $tests_to_skip);
                $run->();
            }
        } elsif ($should_todo) {
            TODO: {
                Test::More::todo_skip("$name - $reason", $tests_to_skip);
                $run->();
            }
        } else {
            $run->();
        }

        if (defined $udp_sock) {
            if (defined $Test::Nginx::Util::UdpServerPid) {
                Test::Nginx::Util::kill_process($Test::Nginx::Util::UdpServerPid, 1, $name);
                undef $Test::Nginx::Util::UdpServerPid;
            }
            close $udp_sock;
            unlink $uds_file if defined $uds_file;
        }

        if (defined $tcp_sock) {
            if (defined $Test::Nginx::Util::TcpServerPid) {
                Test::Nginx::Util::kill_process($Test::Nginx::Util::TcpServerPid, 1, $name);
                undef $Test::Nginx::Util::TcpServerPid;
            }
            close $tcp_sock;
        }
        unlink grep { defined && -e } $tcp_query_file, $udp_query_file;
    }

    if (my $total = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $Test::Nginx::Util::ErrLogFile
            && open my $out, '>>', $total)
        {
            print $out "\n=== $0 $name\n";
            if (open my $in, '<', $Test::Nginx::Util::ErrLogFile) {
                print $out $_ while <$in>;
                close $in;
            }
            close $out;
        }
    }

    # under valgrind nginx runs in the foreground: stop it after each block
    if ($Test::Nginx::Util::UseValgrind) {
        _stop_running_nginx($name);
    }
}

# ---------------------------------------------------------------------------
# embedded TCP / UDP servers
# ---------------------------------------------------------------------------

sub _tmp_query_file () {
    my ($fh, $fname) = File::Temp::tempfile('tn-query-XXXXXXXX', TMPDIR => 1);
    close $fh;
    unlink $fname;
    return $fname;
}

sub _save_query ($$) {
    my ($file, $data) = @_;
    return unless $file;
    my $tmp = "$file.tmp";
    open my $out, '>', $tmp or die "cannot open $tmp for writing: $!\n";
    binmode $out;
    print $out $data;
    close $out;
    rename $tmp, $file or die "cannot rename $tmp to $file: $!\n";
}

sub _reply_list ($$) {
    my ($reply, $query) = @_;
    if (ref $reply eq 'CODE') {
        $reply = $reply->($query);
    }
    return ref $reply eq 'ARRAY' ? @$reply : ($reply);
}

sub _start_tcp_server ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    return unless defined $block->tcp_listen;

    my $target = expand_env_in_text($block->tcp_listen, $name, $rand_ports);
    my $reply = $block->tcp_reply;
    if (!defined $reply && !defined $block->tcp_shutdown) {
        bail_out("$name - no --- tcp_reply specified but --- tcp_listen is specified");
    }

    my $req_len = $block->tcp_query_len;
    my $query_file;
    if (defined $block->tcp_query || defined $req_len) {
        $req_len = length($block->tcp_query) unless defined $req_len;
        $query_file = _tmp_query_file();
    }

    my ($sock, $err);
    for my $try (1 .. 30) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(
                LocalAddr => '127.0.0.1',
                LocalPort => $target,
                Proto     => 'tcp',
                ReuseAddr => 1,
                Listen    => 5,
            );
        } elsif ($target =~ /\S+\.sock$/) {
            unlink $target if -e $target;
            $sock = IO::Socket::UNIX->new(
                Local  => $target,
                Type   => SOCK_STREAM,
                Listen => 5,
            );
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock;
        $err = $!;
        last unless $!{EADDRINUSE};
        warn "WARNING: failed to create the tcp listening socket: $err\n";
        Time::HiRes::sleep(0.5);
    }
    $sock or bail_out("$name - failed to create the tcp listening socket: $err");

    my $pid = fork();
    defined $pid or bail_out("$name - fork() failed: $!");

    if ($pid == 0) {
        $Test::Nginx::Util::InSubprocess = 1;
        Test::More->builder->no_ending(1);
        local $SIG{PIPE} = 'IGNORE';
        # stopped with QUIT by kill_process(): exit quietly, no core file
        local $SIG{QUIT} = sub { POSIX::_exit(0) };

        my $client;
        until ($client = $sock->accept()) {
            Time::HiRes::sleep(Test::Nginx::Util::sleep_time());
        }

        my ($no_read, $no_write);
        if (defined(my $how = $block->tcp_shutdown)) {
            if (my $d = $block->tcp_shutdown_delay) {
                Time::HiRes::sleep($d);
            }
            shutdown($client, $how);
            if ($how == 0 || $how == 2) { $no_read = 1 } else { $no_write = 1 }
        }

        my $buf = '';
        unless ($no_read) {
            my $auto = $block->tcp_query_auto_timeout;
            my $wait = (defined $auto && $auto ne '') ? $auto + 0 : 0.1;
            my $sel = IO::Select->new($client);
            while (1) {
                last if defined $auto && !$sel->can_read($wait);
                my $got = sysread($client, my $chunk, 4096);
                next if !defined $got && $! == EINTR;
                last if !$got;              # error or EOF
                $buf .= $chunk;
                _save_query($query_file, $buf);
                next if defined $auto;
                last if !$req_len || length($buf) >= $req_len;
            }
        }

        if (my $delay = parse_time($block->tcp_reply_delay)) {
            Time::HiRes::sleep($delay);
        }

        if (!$no_write && defined $reply) {
            for my $r (_reply_list($reply, $buf)) {
                next unless defined $r;
                my $off = 0;
                while ($off < length $r) {
                    my $n = syswrite($client, $r, length($r) - $off, $off);
                    if (!defined $n) {
                        next if $! == EINTR;
                        warn "WARNING: tcp server failed to send reply: $!\n";
                        last;
                    }
                    $off += $n;
                }
            }
        }

        if (defined $block->tcp_no_close) {
            sleep 1 while 1;
        }

        close $client;
        close $sock;
        POSIX::_exit(0);
    }

    $Test::Nginx::Util::TcpServerPid = $pid;
    return ($sock, $query_file);
}

sub _run_tcp_server_tests ($$$) {
    my ($block, $sock, $query_file) = @_;
    return unless defined $sock;
    my $name = $block->name;

    my $buf = '';
    if ($query_file && open my $in, '<', $query_file) {
        binmode $in;
        local $/;
        $buf = <$in>;
        $buf = '' unless defined $buf;
        close $in;
    }

    if (defined $block->tcp_query) {
        is_str($buf, $block->tcp_query, "$name - tcp_query ok");
    }
    if (defined $block->tcp_query_len) {
        Test::More::is(length($buf), $block->tcp_query_len,
                       "$name - TCP query length ok");
    }
}

sub _start_udp_server ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    return unless defined $block->udp_listen;

    my $reply = $block->udp_reply;
    defined $reply
        or bail_out("$name - no --- udp_reply specified but --- udp_listen is specified");

    my $query_file = defined $block->udp_query ? _tmp_query_file() : undef;
    my $target = expand_env_in_text($block->udp_listen, $name, $rand_ports);
    my ($sock, $uds);

    if ($target =~ /^\d+$/) {
        $sock = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => $target,
            Proto     => 'udp',
            ReuseAddr => 1,
        ) or bail_out("$name - failed to create the udp listening socket: $!");
    } elsif ($target =~ /\S+\.sock$/) {
        unlink $target if -e $target;
        $sock = IO::Socket::UNIX->new(Local => $target, Type => SOCK_DGRAM)
            or bail_out("$name - failed to create the udp socket $target: $!");
        $uds = $target;
    } else {
        bail_out("$name - bad udp_listen target: $target");
    }

    my $pid = fork();
    defined $pid or bail_out("$name - fork() failed: $!");

    if ($pid == 0) {
        $Test::Nginx::Util::InSubprocess = 1;
        Test::More->builder->no_ending(1);
        local $SIG{QUIT} = sub { POSIX::_exit(0) };

        my $buf = '';
        my $peer = $sock->recv($buf, 4096);
        warn "udp recv failed: $!\n" unless defined $peer;
        _save_query($query_file, $buf);

        if (my $delay = parse_time($block->udp_reply_delay)) {
            Time::HiRes::sleep($delay);
        }

        for my $r (_reply_list($reply, $buf)) {
            next unless defined $r;
            defined $sock->send($r)
                or warn "$name - WARNING: udp server failed to send reply: $!\n";
        }
        POSIX::_exit(0);
    }

    $Test::Nginx::Util::UdpServerPid = $pid;
    return ($sock, $query_file, $uds);
}

sub _run_udp_server_tests ($$$) {
    my ($block, $sock, $query_file) = @_;
    return unless defined $sock && defined $block->udp_query;
    my $buf = '';
    if ($query_file && open my $in, '<', $query_file) {
        binmode $in;
        local $/;
        $buf = <$in>;
        $buf = '' unless defined $buf;
        close $in;
    }
    is_str($buf, $block->udp_query, $block->name . " - udp_query ok");
}

# ---------------------------------------------------------------------------
# building the requests
# ---------------------------------------------------------------------------

# "--- more_headers" text => ("Key: val\r\n"..., chunked?)
sub _more_headers ($) {
    my $text = shift;
    my ($out, $chunked) = ('', 0);
    for my $line (split /\n+/, $text) {
        next if $line =~ /^\s*#/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $v = '' unless defined $v;
        $chunked = 1 if lc($k) eq 'transfer-encoding' && $v eq 'chunked';
        $out .= "$k: $v\r\n";
    }
    return ($out, $chunked);
}

# Turns "METHOD [URI [VERSION]]\n[body]" (possibly split into several
# packets) into a full HTTP request, keeping the packet boundaries.
sub _build_http_request ($$$$$) {
    my ($name, $hdrs, $chunked, $conn, $packets) = @_;

    my $all = join '', map { defined $_ ? $_ : '' } @$packets;
    bail_out("$name - Request line should be non-empty") if $all !~ /\S/;
    $all =~ /\A(\s*)(\S+)( *)(?:(\S+)( *))?(?:(\S+)( *))?(\r?\n|\z)/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$all\".");
    length $2 or bail_out("$name - Request line should be non-empty");

    my ($meth, $uri, $ver) = ($2, $4, $6);
    my $line_len = length $&;
    my $body = substr($all, $line_len);

    my $len_hdr = '';
    if (!$chunked && length $body && $hdrs !~ /(?:^|\n)Content-Length:/) {
        $body =~ s/^\s+|\s+$//g;
        $len_hdr = "Content-Length: " . length($body) . "\r\n";
    }

    my $head = '';
    $head .= "Host: $ServerName\r\n"  if $hdrs !~ /(?:^|\n)Host:/i;
    $head .= "Connection: $conn\r\n"  if $hdrs !~ /(?:^|\n)Connection/i;
    $head .= "$hdrs$len_hdr\r\n";

    my $req_line = join(' ', $meth, defined $uri ? $uri : '/',
                        defined $ver ? $ver : 'HTTP/1.1') . "\r\n";

    return [$req_line . $head . $body] if @$packets <= 1;

    # Several packets: the request line + headers go where the first line
    # was; the body keeps the original split points (as far as possible).
    my @out;
    my $consumed = 0;
    my $emitted_head = 0;
    my $body_left = $body;
    for my $p (@$packets) {
        my $p_len = length(defined $p ? $p : '');
        my $start = $consumed;
        $consumed += $p_len;
        my $piece = '';
        if (!$emitted_head && $consumed >= $line_len) {
            $piece = $req_line . $head;
            $emitted_head = 1;
            my $take = $consumed - ($start > $line_len ? $start : $line_len);
            $piece .= substr($body_left, 0, $take, '');
        } elsif ($emitted_head) {
            $piece = substr($body_left, 0, $p_len, '');
        } else {
            next;           # still inside the request line
        }
        push @out, $piece;
    }
    $out[-1] .= $body_left if @out && length $body_left;
    return \@out;
}

# => [ [ {value => ..., delay_before => ...}, ... ], ... ]  one per request
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        if (ref $raw eq 'ARRAY') {
            push @reqs, [ map { { value => $_ } } @$raw ];
        } else {
            push @reqs, [ { value => $raw } ];
        }
        return \@reqs;
    }

    my $request;
    if (defined $block->request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request eval instead.");
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        if (defined $request && !ref $request) {
            1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//gs;
        }
    }

    my $more = $block->more_headers;
    $more = '' unless defined $more;
    my $hdrs_for = sub {
        my $i = shift;
        if (ref $more eq 'ARRAY') {
            defined $more->[$i]
                or bail_out("--- more_headers lacks data for the request $i");
            return _more_headers($more->[$i]);
        }
        return _more_headers($more);
    };

    if (defined(my $pipe = $block->pipelined_requests)) {
        ref $pipe eq 'ARRAY'
            or bail_out("$name - invalid entries in --- pipelined_requests");
        my $data = '';
        for my $i (0 .. $#$pipe) {
            my $r = expand_env_in_text($pipe->[$i], $name,
                                       $Test::Nginx::Util::RandPorts);
            my ($h, $c) = $hdrs_for->($i);
            my $conn = $i == $#$pipe ? 'close' : 'keep-alive';
            $data .= _build_http_request($name, $h, $c, $conn, [$r])->[0];
        }
        push @reqs, [ { value => $data } ];
        return \@reqs;
    }

    if (!ref $request) {
        my ($h, $c) = $hdrs_for->(0);
        push @reqs, [ { value => _build_http_request($name, $h, $c, 'close',
                                                      [$request])->[0] } ];
        return \@reqs;
    }

    ref $request eq 'ARRAY'
        or bail_out("$name - invalid ---request : MUST be string or array of requests");

    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my ($h, $c) = $hdrs_for->($i);
        if (!ref $one) {
            push @reqs, [ { value => _build_http_request($name, $h, $c, 'close',
                                                          [$one])->[0] } ];
            next;
        }
        ref $one eq 'ARRAY'
            or bail_out("$name - Invalid syntax. $one should be a string or an array of packets.");
        my @raw = map {
            !ref $_ ? $_
            : ref $_ eq 'HASH' ? $_->{value}
            : bail_out("$name - Invalid syntax. $_ should be a string or hash with value.")
        } @$one;
        my $built = _build_http_request($name, $h, $c, 'close', \@raw);
        my @packets;
        for my $j (0 .. $#$built) {
            my %p = ref $one->[$j] eq 'HASH' ? %{ $one->[$j] } : ();
            $p{value} = $built->[$j];
            push @packets, \%p;
        }
        push @reqs, \@packets;
    }
    return \@reqs;
}

# ---------------------------------------------------------------------------
# sending a request and reading the response
# ---------------------------------------------------------------------------

sub _connect ($$) {
    my ($block, $name) = @_;
    my $addr = $block->server_addr_for_client;
    $addr = $ServerAddr unless defined $addr;

    my $max = $TotalConnectingTimeouts ? 20 : 50;
    my $nap = Test::Nginx::Util::sleep_time();
    for my $try (1 .. $max + 1) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $addr,
            PeerPort => $ServerPortForClient,
            Proto    => 'tcp',
            Timeout  => timeout(),
        );
        return $sock if $sock;
        my $err = $!;
        last if $try > $max;

        my $child = $Test::Nginx::Util::ChildPid;
        if (defined $child && waitpid($child, POSIX::WNOHANG()) != 0) {
            warn "WARNING: Child process $child is already gone.\n";
            _fail_no_ending("$name - Can't connect to $addr:$ServerPortForClient: "
                            . "$err (aborted)\n");
            return undef;
        }

        my $wait = ($nap + $nap * $try) * $try / 2;
        $wait = 1 if $wait > 1;
        if ($wait >= 0.6) {
            warn "$name - Can't connect to $addr:$ServerPortForClient: $err\n"
               . "\tRetry connecting after $wait sec\n";
        }
        Time::HiRes::sleep($wait);
    }

    my $msg = "$name - Can't connect to $addr:$ServerPortForClient: $! (aborted)\n";
    if (++$TotalConnectingTimeouts < 3) {
        _fail_no_ending($msg);
    } else {
        bail_out($msg);
    }
    return undef;
}

# Sends the packets, reads until the server closes the connection.
# $timeout is the maximum idle time between two I/O events.
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;

    my $all = join '', map { $_->{value} } @$packets;
    my $head_req = $all =~ /^\s*HEAD\s+/ ? 1 : 0;

    my $sock = _connect($block, $name) or return (undef, $head_req);
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my @queue = @$packets;
    my $cur = shift @queue;
    my $buf = $cur->{value};
    my $off = 0;
    my $writing = 1;
    my $resp = '';

    while (1) {
        my $rset = IO::Select->new($sock);
        my $wset = $writing ? IO::Select->new($sock) : undef;
        $! = 0;
        my ($r, $w) = IO::Select->select($rset, $wset, undef, $timeout);

        if (!$r && !$w) {
            if ($! == EINTR) { next }
            # idle for too long
            close $sock;
            if (!defined $block->abort) {
                _fail_no_ending("ERROR: client socket timed out - $name\n");
            } else {
                Time::HiRes::sleep(0.005);
            }
            last;
        }

        if ($w && @$w && $writing) {
            while (1) {
                if ($off < length $buf) {
                    my $n = syswrite($sock, $buf, length($buf) - $off, $off);
                    if (!defined $n) {
                        last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                        warn "write failed: $!\n";
                        $resp = "write failed: $!" unless length $resp;
                        $writing = 0;
                        last;
                    }
                    $off += $n;
                    next;
                }
                $cur = shift @queue;
                if (!$cur) {
                    $writing = 0;
                    if (defined(my $how = $block->shutdown)) {
                        $how = 1 if $how =~ /^\s*$/;
                        shutdown($sock, $how);
                    }
                    last;
                }
                my $delay = defined $cur->{delay_before} ? $cur->{delay_before}
                                                          : $middle_delay;
                Time::HiRes::sleep($delay) if $delay;
                ($buf, $off) = ($cur->{value}, 0);
            }
        }

        if ($r && @$r) {
            my $n = sysread($sock, my $chunk, 4096);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!";
                last;
            }
            last if $n == 0;
            $resp .= $chunk;
        }
    }

    close $sock;
    return ($resp, $head_req);
}

# => (HTTP::Response, raw header text, extra bytes after the response)
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = $raw =~ /\A(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        $res->code(undef);
        $code = undef;
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $left;
    my $te  = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    # HTTP::Response->parse keeps everything after the blank line as content
    my $body = $raw =~ /\r\n\r\n(.*)\z/s ? $1 : (defined $res->content ? $res->content : '');

    if (defined $te && $te eq 'chunked') {
        my @trailers = $res->header('Trailer');
        my $decoded = '';
        my $pos = 0;
        while (1) {
            pos($body) = $pos;
            if ($body !~ /\G[ \t]*([0-9A-Fa-f]+)[^\r\n]*\r\n/gc) {
                my $rest = substr($body, $pos);
                _fail_no_ending(length $rest
                    ? "$name - invalid chunked body received: $rest"
                    : "$name - no last chunk found - $body");
                return;
            }
            my $size = hex $1;
            $pos = pos($body);
            if ($size == 0) {
                # trailers (if any), then the final CRLF
                my $end = index($body, "\r\n", $pos);
                while ($end > $pos) {
                    $pos = $end + 2;
                    $end = index($body, "\r\n", $pos);
                }
                if ($end < 0) {
                    _fail_no_ending("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
                $pos = $end + 2;
                $left = substr($body, $pos) if $pos < length $body;
                last;
            }
            if (length($body) - $pos < $size + 2) {
                _fail_no_ending("$name - invalid chunked data received "
                                . "(not enought octets for the data section)");
                return;
            }
            $decoded .= substr($body, $pos, $size);
            $pos += $size;
            if (substr($body, $pos, 2) ne "\r\n") {
                _fail_no_ending("$name - invalid chunked data received (expected CRLF).");
                return;
            }
            $pos += 2;
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
               . "but got " . length($body) . "\n" unless $head_req;
            $res->content($body);
        } elsif (length $body > $len) {
            $left = substr($body, $len);
            $res->content(substr($body, 0, $len));
        } else {
            $res->content($body);
        }
    } else {
        $res->content($body);
    }

    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------------
# per-request checks
# ---------------------------------------------------------------------------

sub _indexed ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return ref $value eq 'ARRAY' ? $value->[0] : $value;
}

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';
    SKIP: {
        Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
        if (defined $block->error_code_like) {
            my $pat = _indexed($name, $block->error_code_like, $idx, $need_array);
            Test::More::like($got, qr/$pat/sm, "$name - status code ok");
        } elsif (defined $block->error_code) {
            Test::More::is($got, _indexed($name, $block->error_code, $idx, $need_array),
                           "$name - status code ok");
        } else {
            Test::More::is($got, 200, "$name - status code ok");
        }
    }
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    $raw = '' unless defined $raw;
    if (defined $block->raw_response_headers_like) {
        my $pat = _indexed($name, $block->raw_response_headers_like, $idx, $need_array);
        SKIP: {
            Test::More::skip("$name - raw_response_headers_like - tests skipped due to $dry_run", 1)
                if $dry_run;
            Test::More::like($raw, qr/$pat/s, "$name - raw resp headers like");
        }
    }
    if (defined $block->raw_response_headers_unlike) {
        my $pat = _indexed($name, $block->raw_response_headers_unlike, $idx, $need_array);
        SKIP: {
            Test::More::skip("$name - raw_response_headers_unlike - tests skipped due to $dry_run", 1)
                if $dry_run;
            Test::More::unlike($raw, qr/$pat/s, "$name - raw resp headers unlike");
        }
    }
}

sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    $raw = '' unless defined $raw;

    if (defined $block->response_headers) {
        my $h = parse_headers(_indexed($name, $block->response_headers, $idx, $need_array));
        for my $key (sort keys %$h) {
            my $val = $h->{$key};
            SKIP: {
                Test::More::skip("$name - response_headers - tests skipped due to $dry_run", 1)
                    if $dry_run;
                if (!defined $val) {
                    Test::More::unlike($raw, qr/^\s*\Q$key\E\s*:/ms,
                        "$name - header $key not present in the raw headers");
                    last SKIP;
                }
                $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
                $val =~ s/\$ServerPort\b/$ServerPort/g;
                my $got = $res ? $res->header($key) : undef;
                $got = '' unless defined $got;
                Test::More::is($got, $val, "$name - header $key ok");
            }
        }

    } elsif (defined $block->response_headers_like) {
        my $h = parse_headers(_indexed($name, $block->response_headers_like, $idx,
                                       $need_array));
        for my $key (sort keys %$h) {
            my $val = $h->{$key};
            my $got = $res ? $res->header($key) : undef;
            $got = '' unless defined $got;
            SKIP: {
                Test::More::skip("$name - response_headers_like - tests skipped due to $dry_run", 1)
                    if $dry_run;
                Test::More::like($got, qr/^$val$/, "$name - header $key like ok");
            }
        }
    }
}

sub _apply_body_filter ($$$) {
    my ($block, $f, $data) = @_;
    return $f->($data) if ref $f eq 'CODE';
    bail_out($block->name . " - the --- response_body_filters section only "
             . "supports subroutine reference values and string values") if ref $f;
    my %builtin = (
        md5_hex  => sub { require Digest::MD5; Digest::MD5::md5_hex($_[0]) },
        sha1_hex => sub { require Digest::SHA; Digest::SHA::sha1_hex($_[0]) },
        uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
        ucfirst => sub { ucfirst $_[0] }, lcfirst => sub { lcfirst $_[0] },
        length => sub { length $_[0] },
    );
    my $code = $builtin{$f}
        or bail_out($block->name . " - unknown filter, \"$f\", specified in "
                    . "the --- response_body_filters section");
    return $code->($data);
}

sub transform_response_body ($$$) {
    my ($block, $res, $idx) = @_;
    return unless defined $res && defined $res->content;
    my $filters = $block->response_body_filters;
    return unless defined $filters;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//g;
        $filters = [ split /\s+/, $filters ];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$idx];
        defined $filters
            or bail_out($block->name . " - the ---response_body_filters two-"
                        . "dimensional array unmatch the specified request($idx)");
    }

    my $data = $res->content;
    $data = _apply_body_filter($block, $_, $data) for @$filters;
    $res->content($data);
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $idx, $rep, $need_array) = @_;
    my $name = $block->name;

    if (defined(my $file = $block->write_resp_body_file)) {
        if ($res && open my $out, '>', $file) {
            print $out (defined $res->content ? $res->content : '');
            close $out;
        }
    }

    my $content = $res ? $res->content : undef;

    if (defined $block->response_body || defined $block->response_body_eval) {
        if (defined $block->response_body_json_sort && defined $content) {
            require JSON::PP;
            my $js = JSON::PP->new->canonical(1)->loose(1);
            my $obj = eval { $js->decode($content) };
            $content = $js->encode($obj) . "\n" if !$@;
        }

        my $expected;
        if ($block->response_body_eval) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. "
                             . "Use response_body eval instead.");
            $expected = eval _indexed($name, $block->response_body_eval, $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = _indexed($name, $block->response_body, $idx, $need_array);
        }

        if ($block->charset && defined $expected) {
            Encode::from_to($expected, 'UTF-8', $block->charset);
        }

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected = expand_env_in_text($expected, $name,
                                           $Test::Nginx::Util::RandPorts);
        }

        SKIP: {
            Test::More::skip("$name - response_body - tests skipped due to $dry_run", 1)
                if $dry_run;
            my $desc = "$name - response_body - response is expected "
                     . "(repeated req $rep, req $idx)";
            if (ref $expected) {
                Test::More::like($content, $expected,
                    "$name - response_body - like (repeated req $rep, req $idx)");
            } elsif ($Test::Nginx::Util::NoLongString) {
                Test::More::is($content, $expected, $desc);
            } else {
                Test::LongString::is_string($content, $expected, $desc);
            }
        }

    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = _indexed($name, $type eq 'like' ? $block->response_body_like
                                                  : $block->response_body_unlike,
                           $idx, $need_array);
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        my $summary = trim($content);
        $summary = '' unless defined $summary;
        SKIP: {
            Test::More::skip("$name - response_body_$type - tests skipped due to $dry_run", 1)
                if $dry_run;
            my $desc = "$name - response_body_$type - response is expected ($summary)";
            if ($type eq 'like') {
                Test::More::like($content, qr/$pat/s, $desc);
            } else {
                Test::More::unlike($content, qr/$pat/s, $desc);
            }
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $res ? $res->content : undef, $idx, $rep, $dry_run);
    }
}

# ---------------------------------------------------------------------------
# log checks
# ---------------------------------------------------------------------------

sub _fmt ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# scalar (one pattern per line) / qr// / array => list of patterns
sub _patterns ($) {
    my $p = shift;
    if (!ref $p) {
        chomp $p;
        return [ split /\n+/, $p ];
    }
    return [$p] if ref $p eq 'Regexp';
    return [@$p];
}

sub _contains ($$);
sub _contains ($$) {
    my ($val, $needle) = @_;
    return scalar(grep { _contains($_, $needle) } @$val) if ref $val eq 'ARRAY';
    return defined $val && index("$val", $needle) >= 0;
}

sub _match ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

# "must appear" patterns: one pass or fail per pattern
sub _check_present ($$$$$) {
    my ($lines, $pats, $what, $file, $ctx) = @_;
    my ($name, $dry_run, $suffix) = @$ctx;
    my @todo = @$pats;
    for my $line (@$lines) {
        for my $pat (@todo) {
            next unless defined $pat;
            next unless _match($line, $pat);
            SKIP: {
                Test::More::skip("$name - $what - tests skipped due to $dry_run", 1)
                    if $dry_run;
                Test::More::pass("$name - pattern \"$pat\" matches a line in $file$suffix");
            }
            undef $pat;
        }
    }
    for my $pat (grep { defined } @todo) {
        SKIP: {
            Test::More::skip("$name - $what - tests skipped due to $dry_run", 1)
                if $dry_run;
            Test::More::fail("$name - pattern \"$pat\" should match a line in $file$suffix");
        }
    }
}

# "must not appear" patterns: one pass per pattern, or one fail per
# offending line
sub _check_absent ($$$$$) {
    my ($lines, $pats, $what, $file, $ctx) = @_;
    my ($name, $dry_run, $suffix) = @$ctx;
    my %found;
    for my $i (0 .. $#$lines) {
        my $line = $lines->[$i];
        for my $pat (@$pats) {
            next unless defined $pat;
            next unless _match($line, $pat);
            Test::More->builder->no_ending(1) if $found{$pat}++;
            SKIP: {
                Test::More::skip("$name - $what - tests skipped due to $dry_run", 1)
                    if $dry_run;
                my $last = $i + 9 < $#$lines ? $i + 9 : $#$lines - 1;
                my $more = join '', @$lines[$i + 1 .. $last];
                Test::More::fail("$name - pattern \"" . _fmt($pat)
                    . "\" should not match any line in $file but matches line \""
                    . _fmt($line) . "\"$suffix\n$more");
            }
        }
    }
    for my $pat (@$pats) {
        next if !defined $pat || $found{$pat};
        SKIP: {
            Test::More::skip("$name - $what - tests skipped due to $dry_run", 1)
                if $dry_run;
            Test::More::pass("$name - pattern \"" . _fmt($pat)
                             . "\" does not match a line in $file$suffix");
        }
    }
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $rep, $need_array) = @_;
    my $name = $block->name;
    my $lines;
    my $get = sub { $lines ||= (Test::Nginx::Util::error_log_data() || []) };
    my $ctx = [$name, $dry_run, " (req $rep)"];

    my %warn_on = ('writing a global lua variable' => 1, '[alert' => 1,
                   '[crit' => 1, '[emerg' => 1);

    my $grep = $block->grep_error_log;
    if (defined $grep) {
        $grep = $grep->[$rep] if ref $grep eq 'ARRAY';
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined");
    }

    if (defined $grep) {
        my $expected = $block->grep_error_log_out;
        defined $expected
            or bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined");
        $expected = expand_env_in_text($expected, $name, $Test::Nginx::Util::RandPorts)
            unless ref $expected;
        $expected = $expected->[$rep] if ref $expected eq 'ARRAY';

        SKIP: {
            Test::More::skip("$name - error_log - tests skipped due to $dry_run", 1)
                if $dry_run;
            my $got = '';
            for my $line (@{ $get->() }) {
                my $m;
                if (ref $grep) {
                    $m = $& if $line =~ $grep;
                } elsif (index($line, $grep) >= 0) {
                    $m = $grep;
                }
                $got .= "$m\n" if defined $m && $m !~ /\n/;
            }
            my $desc = "$name - grep_error_log_out (req $rep)";
            if (ref $expected eq 'Regexp') {
                Test::More::like($got, $expected, $desc);
            } elsif ($Test::Nginx::Util::NoLongString) {
                Test::More::is($got, $expected, $desc);
            } else {
                Test::LongString::is_string($got, $expected, $desc);
            }
        }
    }

    for my $sec (qw(error_log no_error_log)) {
        my $val = $block->$sec;
        next unless defined $val;
        for my $k (keys %warn_on) {
            delete $warn_on{$k} if _contains($val, $k);
        }
        if ($sec eq 'error_log') {
            _check_present($get->(), _patterns($val), 'error_log', 'error.log', $ctx);
        } else {
            _check_absent($get->(), _patterns($val), 'no_error_log', 'error.log', $ctx);
        }
    }

    if (!$dry_run) {
        my %re = ('writing a global lua variable' => qr/writing a global lua variable/,
                  '[alert' => qr/\[alert\]/, '[crit' => qr/\[crit\]/,
                  '[emerg' => qr/\[emerg\]/);
        for my $k (sort keys %warn_on) {
            for my $line (@{ $get->() }) {
                warn "WARNING: $name - " . _fmt($line) . "\n" if $line =~ $re{$k};
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            _fail_no_ending("$name - $l\n");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $rep) = @_;
    my $name = $block->name;
    my $lines;
    my $ctx = [$name, $dry_run, " (req $rep)"];
    if (defined(my $v = $block->access_log)) {
        $lines ||= Test::Nginx::Util::access_log_data() || [];
        _check_present($lines, _patterns($v), 'access_log', 'access.log', $ctx);
    }
    if (defined(my $v = $block->no_access_log)) {
        $lines ||= Test::Nginx::Util::access_log_data() || [];
        _check_absent($lines, _patterns($v), 'no_access_log', 'access.log', $ctx);
    }
}

# shutdown_error_log / no_shutdown_error_log of the previous block, checked
# once its nginx has been stopped
sub check_prev_block_shutdown_error_log () {
    my $block = $Test::Nginx::Util::PrevBlock;
    return unless defined $block;
    undef $Test::Nginx::Util::PrevBlock;
    return unless defined $block->shutdown_error_log
               || defined $block->no_shutdown_error_log;

    my $name = $block->name;
    my $dry_run = $ENV{TEST_NGINX_NO_CLEAN} ? 'TEST_NGINX_NO_CLEAN' : 0;
    my $lines = Test::Nginx::Util::error_log_data() || [];
    my $ctx = [$name, $dry_run, ''];

    if (defined(my $v = $block->shutdown_error_log)) {
        _check_present($lines, _patterns($v), 'shutdown_error_log', 'error.log', $ctx);
    }
    if (defined(my $v = $block->no_shutdown_error_log)) {
        _check_absent($lines, _patterns($v), 'no_shutdown_error_log', 'error.log', $ctx);
    }
}

# ---------------------------------------------------------------------------
# one repetition of a block: send every request and check everything
# ---------------------------------------------------------------------------

sub run_test_helper ($$$) {
    my ($block, $dry_run, $rep) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout);
    $timeout = timeout() unless defined $timeout;

    # pipelined_requests: one connection, N responses parsed one by one
    my $pipelined = $block->pipelined_requests;
    my $nresp = $pipelined ? scalar(@$pipelined) : scalar(@$reqs);
    my $need_array = $nresp > 1;

    my $res;
    my ($raw, $head_req);
    my $conn = 0;

    for my $idx (0 .. $nresp - 1) {
        if (!$pipelined || $idx == 0) {
            ($raw, $head_req) = send_request($reqs->[$conn++],
                                             $block->raw_request_middle_delay,
                                             $timeout, $block);
        }
        $raw = '' unless defined $raw;

        if (!defined $block->ignore_response) {
            my ($raw_headers, $left);
            if (defined $block->http09) {
                $res = HTTP::Response->new(200, 'OK', [], $raw);
                $raw_headers = '';
            } else {
                ($res, $raw_headers, $left) = parse_response($name, $raw, $head_req);
            }

            if ($pipelined && $idx < $nresp - 1) {
                $raw = $left;
            } elsif (defined $left && length $left) {
                (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after last chunk in "
                   . "response: \"$l\"\n";
            }

            check_error_code($block, $res, $dry_run, $idx, $need_array);
            check_raw_response_headers($block, $raw_headers, $dry_run, $idx, $need_array);
            check_response_headers($block, $res, $raw_headers, $dry_run, $idx, $need_array);
            transform_response_body($block, $res, $idx);
            check_response_body($block, $res, $dry_run, $idx, $rep, $need_array);
        }

        if ($idx < $nresp - 1) {
            Time::HiRes::sleep($block->wait) if $block->wait;
            check_error_log($block, $res, $dry_run, $rep, $need_array);
            check_access_log($block, $dry_run, $rep) unless defined $block->ignore_response;
        }
    }

    Time::HiRes::sleep($block->wait) if $block->wait;

    if (defined $block->stap) {
        SKIP: {
            Test::More::skip("$name - stap_out - tests skipped due to "
                             . "env TEST_NGINX_USE_STAP is not set", 1);
        }
    }

    check_error_log($block, $res, $dry_run, $rep, $need_array);
    check_access_log($block, $dry_run, $rep) unless defined $block->ignore_response;
}

1;

package Test::Nginx::Util;

# lua-resty-nats: minimal stand-in for openresty/test-nginx's
# Test::Nginx::Util.  Holds the global settings, the server root layout,
# the nginx.conf generator and the nginx process management used by the
# compat Test::Nginx::Socket::Lua in this directory.
#
# This is our own small implementation of the documented Test::Nginx
# behaviour; it is only put on @INC when the real Test::Nginx is not
# installed (see t/README.md).

use strict;
use warnings;

use Exporter 'import';
use Carp qw(croak);
use Cwd ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Socket::INET ();
use List::Util ();
use POSIX ();
use Test::LongString ();
use Test::More ();
use Time::HiRes ();

our $VERSION = '0.01';

sub gen_rand_port (;$$);
sub bail_out (@);
sub cleanup ();

# Marker so that helpers can tell the compat runner from the real one.
our $IsCompat = 1;

our @EXPORT = qw(
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    bail_out check_accum_error_log config_preamble env_to_nginx
    expand_env_in_text html_dir is_running is_str log_level master_off
    master_on master_process_enabled no_long_string no_nginx_manager
    no_root_location no_shuffle parse_headers parse_time repeat_each
    server_addr server_name server_port server_port_for_client
    server_root sleep_time timeout trim use_hup verbose workers
    worker_connections error_log_data access_log_data
    get_pid_from_pidfile get_nginx_version setup_server_root
    write_config_file
    $ServerPort $ServerPortForClient $ServerAddr $ServerName $ServRoot
    $PidFile $ConfFile $NoLongString $RepeatEach $NginxVersion
);

# ---------------------------------------------------------------------------
# settings (same environment variables and defaults as Test::Nginx)
# ---------------------------------------------------------------------------

our $Verbose          = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary      = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Randomize        = $ENV{TEST_NGINX_RANDOMIZE};
our $UseValgrind      = $ENV{TEST_NGINX_USE_VALGRIND};
our $UseHup           = $ENV{TEST_NGINX_USE_HUP};      # accepted, not used
our $LoadModules      = $ENV{TEST_NGINX_LOAD_MODULES};
our $NoShuffle        = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoNginxManager   = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $Timeout          = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep   = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $EventType        = $ENV{TEST_NGINX_EVENT_TYPE};
our $WorkerUser       = $ENV{TEST_NGINX_WORKER_USER};
our $ForceRestartOnTest = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                          ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;

our $RepeatEach           = 1;
our $NoLongString;
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $NoRootLocation       = 0;
our $ConfigPreamble       = '';
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                            || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

if (defined $WorkerUser && $WorkerUser !~ /^\w[-\w]+(?:\s+\w[-\w]+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

# valgrind needs nginx in the foreground so that we own the process
if ($UseValgrind) {
    $DaemonEnabled = 'off';
}

our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers, @TestCleanupHandlers);
our ($FilterHttpConfig, $RandPorts, $NginxVersion, $NginxRawVersion);
our ($PrevConfig, $PrevBlock, $ChildPid, $TcpServerPid, $UdpServerPid);
our $ErrLogFilePos = 0;
our $ValgrindExitWait = 60;     # seconds; see kill_process()
our $InSubprocess;
our $FirstTime = 1;

srand($$ ^ int(Time::HiRes::time() * 1000));

if ($Randomize) {
    $ServerPort = gen_rand_port(1000, {});
    if (!defined $ServerPort) {
        bail_out("Cannot find an available listening port number after 1000 attempts.\n");
    }
    $ServerPortForClient = $ServerPort;
}

our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : ($ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot'));
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
our $CacheDir   = "$ServRoot/cache";

# ---------------------------------------------------------------------------
# small setters / getters exported to the test suites
# ---------------------------------------------------------------------------

sub _getset {
    my ($ref, @args) = @_;
    $$ref = $args[0] if @args;
    return $$ref;
}

sub repeat_each (@)          { _getset(\$RepeatEach, @_) }
sub workers (@)              { _getset(\$Workers, @_) }
sub worker_connections (@)   { _getset(\$WorkerConnections, @_) }
sub log_level (@)            { _getset(\$LogLevel, @_) }
sub server_addr (@)          { _getset(\$ServerAddr, @_) }
sub server_name (@)          { _getset(\$ServerName, @_) }
sub server_port (@)          { _getset(\$ServerPort, @_) }
sub server_port_for_client (@) { _getset(\$ServerPortForClient, @_) }
sub timeout (@)              { _getset(\$Timeout, @_) }
sub no_long_string ()        { $NoLongString = 1 }
sub no_shuffle ()            { $NoShuffle = 1 }
sub no_root_location ()      { $NoRootLocation = 1 }
sub no_nginx_manager ()      { $NoNginxManager = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub use_hup ()               { $UseHup = 1 }
sub master_on ()             { $MasterProcessEnabled = 'on' }
sub master_off ()            { $MasterProcessEnabled = 'off' }
sub config_preamble ($)      { $ConfigPreamble = shift }
sub server_root ()           { $ServRoot }
sub html_dir ()              { $HtmlDir }
sub sleep_time ()            { $TestNginxSleep }
sub verbose ()               { $Verbose }

sub master_process_enabled (@) {
    if (@_) {
        $MasterProcessEnabled = $_[0] ? 'on' : 'off';
    }
    return $MasterProcessEnabled;
}

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

# Like Test::Nginx: the preprocessor registered last runs first.
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)     { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return Test::LongString::is_string($got, $expected, $desc);
}

# "1.5", "1.5s" and "200ms" => seconds
sub parse_time ($) {
    my $t = shift;
    return undef unless defined $t;
    if ($t =~ /^\s*([\d.]+)\s*ms\s*$/) {
        return $1 / 1000;
    }
    if ($t =~ /^\s*([\d.]+)\s*s?\s*$/) {
        return $1 + 0;
    }
    return $t;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /g;
    $s =~ s/\s{2,}/ /g;
    return $s;
}

# "Name: value" lines; "!Name" means the header must be absent (undef).
sub parse_headers ($) {
    my $text = shift;
    my %h;
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        if ($line =~ s/^!\s*//) {
            $h{$line} = undef;
            next;
        }
        my ($k, $v) = split /\s*:\s*/, $line, 2;
        $h{$k} = $v;
    }
    return \%h;
}

# ---------------------------------------------------------------------------
# ports and environment expansion
# ---------------------------------------------------------------------------

sub port_is_free ($) {
    my $port = shift;
    my $s = IO::Socket::INET->new(
        LocalAddr => $ServerAddr,
        LocalPort => $port,
        Proto     => 'tcp',
        Listen    => 1,
        ReuseAddr => 1,
    );
    return 0 unless $s;
    close $s;
    return 1;
}

sub gen_rand_port (;$$) {
    my ($tries, $used) = @_;
    $tries ||= 1000;
    $used  ||= {};
    for (1 .. $tries) {
        # ports above 1987, like Test::Nginx (1984..1987 are reserved)
        my $port = 1988 + int rand(65535 - 1988);
        next if $used->{$port};
        return $port if port_is_free($port);
    }
    return undef;
}

# Replaces every $TEST_NGINX_XXX with the environment value;
# $TEST_NGINX_RAND_PORT_N become free random ports, stable within one block.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;
    $rand_ports ||= {};

    my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);

    my $expand = sub {
        my $var = shift;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            if (!defined $rand_ports->{$var}) {
                my $port = gen_rand_port(1000, \%used);
                defined $port
                    or bail_out("$name - Cannot find an available listening port number for $var.\n");
                $rand_ports->{$var} = $port;
                $used{$port} = 1;
            }
            return $rand_ports->{$var};
        }
        defined $ENV{$var}
            or bail_out("$name - No environment $var defined.\n");
        return $ENV{$var};
    };

    $text =~ s/\$(TEST_NGINX_[_A-Z0-9]+)/$expand->($1)/ge;
    return $text;
}

# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

# kill(0) succeeds for zombies too; those count as "not running".
sub is_running ($) {
    my $pid = shift;
    return 0 unless $pid && kill(0, $pid);
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $st = <$fh>;
        close $fh;
        return 0 if defined $st && $st =~ /^\d+ \(.*\) ([ZX])/s;
    }
    return 1;
}

sub _reap ($) {
    my $pid = shift;
    waitpid($pid, POSIX::WNOHANG());
}

# Graceful stop: QUIT (TERM with TEST_NGINX_FAST_SHUTDOWN), wait up to
# timeout() seconds, then KILL.
sub kill_process ($$$) {
    my ($pid, $wait, $name) = @_;
    return unless $pid;

    if ($wait) {
        my $sig = $ENV{TEST_NGINX_FAST_SHUTDOWN} ? 'TERM' : 'QUIT';
        warn "sending $sig to $pid\n" if $Verbose;
        kill $sig, $pid;
        my $left = timeout();
        # under valgrind nginx's exit includes memcheck's leak check, which
        # can take longer than timeout(): signalling it again would lose
        # the report (the real Test::Nginx never signals a valgrind nginx
        # again once its pid file is gone), so give it time
        $left = $ValgrindExitWait if $UseValgrind && $left < $ValgrindExitWait;
        while ($left > 0 && is_running($pid)) {
            _reap($pid);
            Time::HiRes::sleep(0.02);
            $left -= 0.02;
        }
        _reap($pid);
        return unless is_running($pid);
        warn "$name - timeout when waiting for the process $pid to exit\n";
    }

    for my $i (1 .. 20) {
        _reap($pid);
        return unless is_running($pid);
        kill 'TERM', $pid;
        Time::HiRes::sleep($i < 5 ? 0.05 : 0.2);
    }

    warn "$name - WARNING: killing the child process $pid with force...\n";
    kill 'KILL', $pid;
    for (1 .. 50) {
        _reap($pid);
        last unless is_running($pid);
        Time::HiRes::sleep(0.02);
    }
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile
        or bail_out("$name - Failed to open the pid file $PidFile for reading: $!");
    my $pid = do { local $/; <$in> };
    close $in;
    $pid = '' unless defined $pid;
    $pid =~ s/\s+//g;
    return $pid;
}

sub nginx_V () {
    my $out = `$NginxBinary -V 2>&1`;
    return ($?, $out);
}

sub get_nginx_version () {
    my ($rc, $out) = nginx_V();
    if (!defined $out || $rc != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: "
                 . (defined $out ? $out : ''));
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return sprintf("%d.%03d%03d", $1, $2, $3);
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return (-f $cmd && -x _) ? $cmd : undef;
    }
    for my $dir (split /:/, ($ENV{PATH} || '')) {
        next if $dir eq '';
        return "$dir/$cmd" if -f "$dir/$cmd" && -x _;
    }
    return undef;
}

sub cleanup () {
    $_->() for @CleanupHandlers;
    for my $pidref (\$UdpServerPid, \$TcpServerPid, \$ChildPid) {
        if (defined $$pidref) {
            kill_process($$pidref, 1, 'cleanup');
            undef $$pidref;
        }
    }
}

# ---------------------------------------------------------------------------
# log files
# ---------------------------------------------------------------------------

# New error.log lines since the last call (whole file with
# check_accum_error_log).  Sleeps a bit first so that nginx can flush
# the log-phase messages.
sub error_log_data () {
    Time::HiRes::sleep($TestNginxSleep * 3);
    open my $in, '<', $ErrLogFile or return undef;
    if (!$CheckAccumErrLog && $ErrLogFilePos > 0) {
        seek $in, $ErrLogFilePos, 0;
    }
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data () {
    Time::HiRes::sleep($TestNginxSleep * 3);
    open my $in, '<', $AccLogFile or return undef;
    my @lines = <$in>;
    close $in;
    return \@lines;
}

# ---------------------------------------------------------------------------
# server root and nginx.conf
# ---------------------------------------------------------------------------

sub setup_server_root ($) {
    my $first_time = shift;

    if (-d $ServRoot) {
        # only remove what we create ourselves, then rmdir: never wipe a
        # directory that holds foreign data
        remove_tree($ConfDir, $CacheDir, $HtmlDir, $LogDir,
                    glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }

    for my $d ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $d or bail_out("Failed to do mkdir $d: $!\n");
    }

    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
             . '<body>It works!</body></html>';
    close $out;
}

# --- user_files
# >>> name [touch-date]
# content
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name  = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
                next;
            }
            $list[-1][1] .= $line if @list;
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: " . ref($files)
                 . ", only scalar or ARRAY are accepted");
    }

    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        $body = '' unless defined $body;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        (my $dir = $path) =~ s{/[^/]*$}{};
        make_path($dir) if length $dir && !-d $dir;
        $body = expand_env_in_text($body, $name, $rand_ports);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - failed to touch $path\n");
        }
    }
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $http_config = expand_env_in_text($block->http_config, $name, $rand_ports);
    $http_config = '' unless defined $http_config;
    $http_config = $FilterHttpConfig->($http_config) if $FilterHttpConfig;

    my $main_config = $block->main_config;
    $main_config = '' unless defined $main_config;
    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { length } split /\s+/, $LoadModules;
        $main_config = join ' ', @mods, $main_config if @mods;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);

    my $post_main_config = expand_env_in_text($block->post_main_config, $name,
                                              $rand_ports);
    $post_main_config = '' unless defined $post_main_config;

    my $err_log_file = $block->error_log_file || $ErrLogFile;
    $err_log_file = expand_env_in_text($err_log_file, $name, $rand_ports);

    my $server_name = $block->server_name;
    $server_name = $ServerName unless defined $server_name;

    $config = '' unless defined $config;

    # NB: Test::Nginx only emits TEST_NGINX_POSTPONE_OUTPUT in its HUP
    # mode, which this runner does not have: ignored here as well.

    my (undef, $V) = nginx_V();
    $V = '' unless defined $V;
    my %temp;
    for my $m (qw(client_body proxy fastcgi scgi uwsgi)) {
        $temp{$m} = "${m}_temp_path $ServRoot/${m}_temp;";
    }
    for my $m (qw(fastcgi scgi uwsgi)) {
        $temp{$m} = '' if $V =~ /--without-http_${m}_module/;
    }
    for my $m (qw(client_body proxy)) {
        $temp{$m} = '' if $http_config =~ /\b${m}_temp_path\b/;
    }
    my $temp = join ' ', @temp{qw(client_body proxy fastcgi scgi uwsgi)};

    my $env_lines = join '', map { "env $_;\n" } qw(
        MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
        LD_PRELOAD LD_LIBRARY_PATH DYLD_INSERT_LIBRARIES
        DYLD_FORCE_FLAT_NAMESPACE);
    for my $v (@EnvToNginx) {
        $env_lines .= $v =~ /\s/ ? "env '$v';\n" : "env $v;\n";
    }

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;";
    } elsif ($> == 0) {
        $user = "user root;";
    }

    my $use_event = $EventType ? "    use $EventType;\n" : '';

    # Same line layout as Test::Nginx's nginx.conf, so that line numbers
    # (e.g. in "content_by_lua(nginx.conf:42)") are identical.
    my $conf = <<"_EOC_";
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
$env_lines#env LUA_PATH;
#env LUA_CPATH;

$main_config

http {
    access_log $AccLogFile; $temp
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerPort;
        #placeholder
        server_name     '$server_name';
        
        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
$use_event}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out $conf;
    close $out;
}

# Shell command line that starts nginx for the current server root.
sub nginx_command () {
    my $cmd = "$NginxBinary -p $ServRoot/ -c $ConfFile";
    if (defined $NginxVersion && $NginxVersion >= 1.019005) {
        # send the early startup messages to error.log too (nginx >= 1.19.5)
        $cmd = "$NginxBinary -e $ErrLogFile -p $ServRoot/ -c $ConfFile";
    }
    if (defined $ENV{TEST_NGINX_LD_PRELOAD}) {
        my $pre = $ENV{TEST_NGINX_LD_PRELOAD};
        $pre .= " $ENV{LD_PRELOAD}" if defined $ENV{LD_PRELOAD};
        $cmd = qq{LD_PRELOAD="$pre" $cmd};
    }
    return $cmd;
}

sub valgrind_prefix () {
    my $v = $UseValgrind;
    my $supp = -f 'valgrind.suppress' ? ' --suppressions=valgrind.suppress' : '';
    if ($v =~ /^\d+$/) {
        my $opts = '--tool=memcheck --leak-check=full --keep-debuginfo=yes'
                 . ' --show-possibly-lost=no';
        if ($ENV{TEST_NGINX_VALGRIND_EXIT_ON_FIRST_ERR}) {
            $opts .= ' --exit-on-first-error=yes --error-exitcode=1';
        }
        return "valgrind --num-callers=100 -q $opts --gen-suppressions=all$supp";
    }
    return "valgrind -q $v";
}

END {
    return if $InSubprocess;
    local $?;

    cleanup();

    if ($UseValgrind || !$ENV{TEST_NGINX_NO_CLEAN}) {
        if (defined $PidFile && -f $PidFile) {
            my $pid = get_pid_from_pidfile('END');
            if ($pid && is_running($pid)) {
                kill_process($pid, 1, 'END');
            } else {
                unlink $PidFile;
            }
        }
    }

    if (defined &Test::Nginx::Socket::Lua::check_prev_block_shutdown_error_log) {
        Test::Nginx::Socket::Lua::check_prev_block_shutdown_error_log();
    }

    if ($Randomize && defined $ServRoot && $ServRoot =~ m{/t/servroot_\d+$}
        && -d $ServRoot)
    {
        remove_tree($ServRoot);
    }
}

1;

package TestNats;

# Shared preprocessor module for the lua-resty-nats Test::Nginx suites.
#
#   use lib 't/lib';
#   use TestNats;
#   repeat_each(2);
#   plan tests => repeat_each() * (3 * blocks());     # or: plan_tests()
#   run_tests();
#   __DATA__
#
# Works on top of the real Test::Nginx::Socket::Lua (openresty/test-nginx)
# and of the small compat runner in t/compat (used only when the real one
# is not installed).  See t/README.md.
#
# NB: "use Test::Nginx::Socket::Lua -Base" below makes this package a
# subclass (Spiffy), so the whole Test::Nginx API is re-exported to the
# suites.  Spiffy's -Base source filter adds "my $self = shift;" to every
# named sub of the form "sub name {" in this file: all named subs here
# therefore carry a prototype.

use strict;
use warnings;

our ($RepoRoot, $CompatDir, $Runner);

BEGIN {
    require Cwd;
    require File::Basename;
    my $lib = File::Basename::dirname(Cwd::abs_path(__FILE__));   # <repo>/t/lib
    $RepoRoot  = Cwd::abs_path("$lib/../..");
    $CompatDir = "$RepoRoot/t/compat";

    # The real Test::Nginx wins whenever it can be found on @INC (or was
    # already loaded); otherwise the compat runner is appended to @INC.
    # "prove -I t/compat" forces the compat runner.
    my $have_real = $INC{'Test/Nginx/Socket/Lua.pm'};
    if (!$have_real) {
        for my $dir (@INC) {
            next if ref $dir;
            if (-f "$dir/Test/Nginx/Socket/Lua.pm") {
                $have_real = "$dir/Test/Nginx/Socket/Lua.pm";
                last;
            }
        }
    }
    push @INC, $CompatDir unless $have_real;
}

use Test::Nginx::Socket::Lua -Base;

$Runner = $Test::Nginx::Socket::Lua::IsCompat ? 'compat' : 'test-nginx';

use NginxInfo;

# where the suites load modules from: the build's modules directory (the
# nats module, the patched lua module, NDK); a module compiled into the
# nginx under test (NginxInfo) is not loaded
our $ModulesDir = $ENV{TEST_NGINX_MODULES_DIR} || "$RepoRoot/build/modules";
our @Modules = @NginxInfo::Modules;

# Lua: the repo's lua/ first, then the suites' helper modules (t/lua/:
# require "t_jit" and the like), then TEST_NGINX_LUA_PATH (extra entries,
# e.g. where a lua-resty-core matching the lua module is), then the lua
# module's default path (";;": what the nginx under test uses in
# production, where it found lua-resty-core to start at all)
our $LuaPackagePath = "$RepoRoot/lua/?.lua;$RepoRoot/t/lua/?.lua;"
    . (length($ENV{TEST_NGINX_LUA_PATH} // '')
       ? "$ENV{TEST_NGINX_LUA_PATH};" : '')
    . ';';
$ENV{TEST_NGINX_LUA_PACKAGE_PATH} = $LuaPackagePath
    unless defined $ENV{TEST_NGINX_LUA_PACKAGE_PATH};

# set to 1 (before run_tests) to load a stock lua module instead of the
# one in the modules dir (patched by the build): TEST_NGINX_STOCK_LUA_MODULE
# or <modules dir>/stock/ngx_http_lua_module.so; see stock_lua_unavailable
our $StockLua = 0;
our $StockLuaModule = $ENV{TEST_NGINX_STOCK_LUA_MODULE}
    || "$ModulesDir/stock/ngx_http_lua_module.so";

our @EXPORT = qw(
    plan_tests block_tests load_module_lines nats_module_available
    patched_lua_module stock_lua_unavailable
    $RepoRoot $ModulesDir $LuaPackagePath $Runner
);

# $TEST_NGINX_REPO in the suites: the checkout (t/run exports it too).
$ENV{TEST_NGINX_REPO} = $RepoRoot unless defined $ENV{TEST_NGINX_REPO};

# Default log level of the suites: info (TEST_NGINX_LOG_LEVEL still wins).
log_level('info') unless $ENV{TEST_NGINX_LOG_LEVEL};

# ---------------------------------------------------------------------------
# load_module lines
# ---------------------------------------------------------------------------

my $LoadLines;

sub nats_module_available () {
    return 1 if NginxInfo::is_builtin('ngx_http_lua_nats_module');
    return -f "$ModulesDir/ngx_http_lua_nats_module.so" ? 1 : 0;
}

# the lua module the suites use has the setkeepalive_nats patch (the
# binary's when it is compiled in)
sub patched_lua_module () {
    return NginxInfo::has_setkeepalive_nats("$ModulesDir/ngx_http_lua_module.so");
}

# why a stock lua module cannot be loaded into the nginx under test, or
# undef when it can ($StockLuaModule)
sub stock_lua_unavailable () {
    my $nginx = NginxInfo::binary();
    if (NginxInfo::is_builtin('ngx_http_lua_module')) {
        return "ngx_http_lua_module is compiled into $nginx: no stock lua "
             . "module can be loaded in its place";
    }
    my $so = $StockLuaModule;
    return "no stock lua module at $so (TEST_NGINX_STOCK_LUA_MODULE)"
        unless -f $so;
    my ($want, $got) = (NginxInfo::signature($nginx),
                        NginxInfo::signature($so));
    if (!defined $want || !defined $got || $want ne $got) {
        return "the stock lua module $so is not built for $nginx "
             . "(module signature " . ($got // 'none') . ", nginx's "
             . ($want // 'none') . ")";
    }
    return "$so has setkeepalive_nats: not a stock module"
        if NginxInfo::has_setkeepalive_nats($so);
    return undef;
}

# "load_module .../ndk_http_module.so; ..." for the modules that are not
# compiled into nginx, from $TEST_NGINX_MODULES_DIR (default
# <repo>/build/modules); one that is missing is left out, with a note
sub load_module_lines () {
    return $LoadLines if defined $LoadLines;
    my @lines;
    for my $m (@Modules) {
        next if NginxInfo::is_builtin($m);
        my $path = "$ModulesDir/$m.so";
        if ($StockLua && $m eq 'ngx_http_lua_module') {
            $path = $StockLuaModule;
        }
        if (!-f $path) {
            Test::More::diag("TestNats: $path not found: not loading $m");
            next;
        }
        push @lines, "load_module $path;";
    }
    $LoadLines = join("\n", @lines) . (@lines ? "\n" : '');
    return $LoadLines;
}

add_block_preprocessor(sub {
    my $block = shift;

    # main_config: load the modules first (unless the block loads one itself)
    my $main = $block->main_config;
    $main = '' unless defined $main;
    my $loads = join "\n", grep {
        my ($file) = m{/([^/]+\.so);$};
        index($main, $file) < 0;
    } split /\n/, load_module_lines();
    $block->set_value('main_config', (length $loads ? "$loads\n" : '') . $main);

    # http_config: our lua_package_path unless the block sets its own
    my $http = $block->http_config;
    if (!defined $http || $http !~ /\blua_package_path\b/) {
        $http = '' unless defined $http;
        $block->set_value('http_config',
                          qq{    lua_package_path "$LuaPackagePath";\n$http});
    }
});

# ---------------------------------------------------------------------------
# plan helpers
# ---------------------------------------------------------------------------

sub _n_patterns ($) {
    my $v = shift;
    return 0 unless defined $v;
    if (!ref $v) {
        chomp $v;
        return scalar(my @l = split /\n+/, $v);
    }
    return 1 if ref $v eq 'Regexp';
    return scalar grep { defined } @$v;
}

sub _n_headers ($) {
    my $v = shift;
    return 0 unless defined $v;
    my %k;
    for my $line (split /\n/, $v) {
        $line =~ s/^\s+|\s+$//g;
        $line =~ s/^!\s*//;
        my ($key) = split /\s*:\s*/, $line, 2;
        $k{defined $key ? $key : ''} = 1;
    }
    return scalar keys %k;
}

sub _pick ($$) {
    my ($v, $i) = @_;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

# Number of tests Test::Nginx::Socket emits for one block: returns
# (tests per repetition, tests once per block).  Only the sections present
# in the block are counted, i.e. sections added later by other block
# preprocessors are not seen; TestNats' own preprocessor adds none.
sub block_tests ($) {
    my $block = shift;

    if (defined $block->todo && $block->todo =~ /^\s*(\d+)\s*:/) {
        return ($1, 0);
    }

    my $once = _n_patterns($block->shutdown_error_log)
             + _n_patterns($block->no_shutdown_error_log);

    my $log_checks = _n_patterns($block->error_log)
                   + _n_patterns($block->no_error_log);

    if (defined $block->must_die) {
        return (1 + $log_checks + (defined $block->grep_error_log ? 1 : 0), $once);
    }

    my $req = defined $block->request_eval ? undef : $block->request;
    my $nreq = 1;
    if (defined $block->raw_request) {
        $nreq = 1;
    } elsif (ref $block->pipelined_requests eq 'ARRAY') {
        $nreq = @{ $block->pipelined_requests };
    } elsif (ref $req eq 'ARRAY') {
        $nreq = @$req;
    }

    my $per_req = 0;
    if (!defined $block->ignore_response) {
        $per_req += 1;                                          # status code
        $per_req += 1 if defined $block->raw_response_headers_like;
        $per_req += 1 if defined $block->raw_response_headers_unlike;
        $per_req += 1 if defined $block->response_body
                      || defined $block->response_body_eval
                      || defined $block->response_body_like
                      || defined $block->response_body_unlike;
    }

    my $n = 0;
    for my $i (0 .. $nreq - 1) {
        $n += $per_req;
        if (!defined $block->ignore_response) {
            if (defined $block->response_headers) {
                $n += _n_headers(_pick($block->response_headers, $i));
            } elsif (defined $block->response_headers_like) {
                $n += _n_headers(_pick($block->response_headers_like, $i));
            }
        }
        # error log checks run after every request
        $n += $log_checks;
        $n += 1 if defined $block->grep_error_log;
        if (!defined $block->ignore_response) {
            $n += _n_patterns($block->access_log) + _n_patterns($block->no_access_log);
        }
    }

    $n += 1 if defined $block->stap;
    if (defined $block->tcp_listen) {
        $n += 1 if defined $block->tcp_query;
        $n += 1 if defined $block->tcp_query_len;
    }
    $n += 1 if defined $block->udp_listen && defined $block->udp_query;

    return ($n, $once);
}

# Total for the whole file: repeat_each() * per-repetition + once-per-block.
#   plan tests => plan_tests();
sub plan_tests () {
    my $total = 0;
    for my $block (Test::Base::blocks()) {
        my ($per, $once) = block_tests($block);
        $total += repeat_each() * $per + $once;
    }
    return $total;
}

1;

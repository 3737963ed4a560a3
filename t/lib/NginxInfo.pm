package NginxInfo;

# What the nginx under test is, from the environment or from the binary
# itself: no distribution path is assumed. Plain Perl (no Test::Nginx), so
# that t/run can use it too:
#
#   perl -It/lib -MNginxInfo -e 'print NginxInfo::summary()'
#
# TEST_NGINX_BINARY        the nginx binary (default: "nginx" on PATH, as
#                          Test::Nginx does)
# TEST_NGINX_BUILTIN_MODULES  the modules compiled into it, separated by
#                          spaces or commas (default: found in the binary's
#                          module name table; "none" for none)

use strict;
use warnings;

# the modules the suites need, in load order
our @Modules = qw(ndk_http_module ngx_http_lua_module ngx_http_lua_nats_module);

sub binary {
    my $b = $ENV{TEST_NGINX_BINARY} || 'nginx';
    return $b if $b =~ m{/};
    for my $dir (split /:/, $ENV{PATH} || '') {
        return "$dir/$b" if -x "$dir/$b";
    }
    return $b;
}

my %Contents;

sub _contents {
    my $path = shift;
    return $Contents{$path} if exists $Contents{$path};
    my $bin;
    if (open my $fh, '<:raw', $path) {
        local $/;
        $bin = <$fh>;
        close $fh;
    }
    return $Contents{$path} = $bin;
}

# nginx's configure writes every compiled-in module's name into
# ngx_module_names[] as a C string: "\0<name>\0" in the binary
sub builtin_modules {
    if (defined $ENV{TEST_NGINX_BUILTIN_MODULES}
        && $ENV{TEST_NGINX_BUILTIN_MODULES} ne '')
    {
        return grep { $_ ne '' && $_ ne 'none' }
               split /[\s,]+/, $ENV{TEST_NGINX_BUILTIN_MODULES};
    }
    my $bin = _contents(binary());
    return () unless defined $bin;
    return grep { index($bin, "\0$_\0") >= 0 } @Modules;
}

sub is_builtin {
    my $name = shift;
    return scalar grep { $_ eq $name } builtin_modules();
}

# the module signature ("8,4,8,0000111111010111001111111111111111") that
# nginx compares before loading a module ("is not binary compatible")
sub signature {
    my $bin = _contents(shift);
    return undef unless defined $bin;
    return $bin =~ /\0(\d+,\d+,\d+,[01]{20,})\0/ ? $1 : undef;
}

# the first line of "nginx -v" ("nginx version: nginx/1.22.1")
sub version {
    my $b = binary();
    my $out = `"$b" -v 2>&1`;
    return undef unless defined $out && $out =~ /(nginx version: \S+)/;
    return $1;
}

# the lua module in use has setkeepalive_nats: the binary when the lua
# module is compiled in, else the .so given
sub has_setkeepalive_nats {
    my $so = shift;
    my $path = is_builtin('ngx_http_lua_module') ? binary() : $so;
    my $bin = defined $path ? _contents($path) : undef;
    return defined $bin && index($bin, 'setkeepalive_nats') >= 0 ? 1 : 0;
}

sub summary {
    my @in = builtin_modules();
    return sprintf "%s (%s), compiled in: %s\n", binary(),
        version() || 'no version: not an nginx binary?',
        @in ? join(' ', @in) : 'none of ' . join(' ', @Modules);
}

1;

#!/bin/sh
# What the serving image leaves out of the base image's system (the Dockerfile's `system` stage).
#
# The runtime runs Python, its standard library's native modules and the virtualenv's libraries;
# it never installs a package, logs anyone in or mounts a disk. So the installers, the package
# manager and its database, Perl (which only package scripts use), and the administration tools
# with the libraries only they link go (about 45 MB here). What is left is checked: every ELF
# file under /usr must find each library it needs (ldd), and the Dockerfile's `slim` stage, built
# on this stage, serves both frameworks and scores files on it (docker/warm.py) before any image
# is tagged. The package list (/var/lib/dpkg/status) is kept, without the removed packages, so
# image scanners still see what is installed.
set -eu

# 1. Python's installers (the virtualenv was filled by the deps stage), documentation, manual
#    pages, translations of system messages, glibc's iconv character-set modules (Python's codecs
#    are its own), package lists and caches.
if dpkg -s python3-pip > /dev/null 2>&1; then
    apt-get purge -y --auto-remove python3-pip python3-setuptools python3-wheel \
        python3-pip-whl python3-setuptools-whl python3-venv python3.11-venv \
        python3-distutils python3-lib2to3
fi
rm -rf /usr/local/lib/python3*/site-packages/pip /usr/local/lib/python3*/site-packages/pip-* \
    /usr/local/lib/python3*/site-packages/setuptools* /usr/local/lib/python3*/site-packages/wheel* \
    /usr/local/bin/pip* /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
    /usr/share/locale/* /usr/lib/*-linux-gnu/gconv /var/lib/apt/lists/* /var/cache/apt/*

# 2. Packages no serving process runs or links (their files, where installed): apt, dpkg, debconf
#    and Perl; logins, passwords and PAM (the user was created above); disks, mounts and
#    filesystems (util-linux, e2fsprogs); the TLS, GnuPG and systemd libraries only apt and
#    those tools use (Python's ssl module links OpenSSL, which stays).
PACKAGES="apt libapt-pkg6.0 gpgv debian-archive-keyring dpkg debconf perl-base
    init-system-helpers sysvinit-utils adduser
    login passwd libpam-modules libpam-modules-bin libpam-runtime libpam0g libaudit1
    libaudit-common libcap-ng0 libsemanage2 libsemanage-common libsepol2
    util-linux util-linux-extra mount bsdutils libmount1 libblkid1 libsmartcols1 libfdisk1
    e2fsprogs libext2fs2 libss2 logsave
    libgnutls30 libp11-kit0 libtasn1-6 libnettle8 libhogweed6 libidn2-0 libunistring2
    libsystemd0 libudev1 libgcrypt20 libgpg-error0 liblz4-1 libxxhash0 libzstd1 libseccomp2"
files=$(mktemp)
for package in $PACKAGES; do
    dpkg-query -L "$package" >> "$files" 2> /dev/null || true
done
status=$(mktemp)
# shellcheck disable=SC2086  # one word per package
awk -v drop="$(echo $PACKAGES)" '
    BEGIN { RS = ""; ORS = "\n\n"; n = split(drop, names, " "); for (i = 1; i <= n; i++) gone[names[i]] = 1 }
    { split($0, lines, "\n"); name = lines[1]; sub(/^Package: /, "", name); sub(/:.*/, "", name) }
    !(name in gone) { print }
' /var/lib/dpkg/status > "$status"
# Files only: a directory (or usrmerge's /bin -> usr/bin link) may be shared with other packages.
while IFS= read -r path; do
    if [ ! -d "$path" ] && { [ -f "$path" ] || [ -L "$path" ]; }; then
        rm -f "$path"
    fi
done < "$files"
rm -rf /var/lib/dpkg /var/lib/apt /var/cache/apt /var/cache/debconf /etc/apt /var/log/*
mkdir -p /var/lib/dpkg
mv "$status" /var/lib/dpkg/status
chmod 644 /var/lib/dpkg/status
rm -f "$files"

# 3. The standard library's bytecode: the `slim` stage's serving run writes it again for exactly
#    the modules serving imports, and the runtime stage copies that (as for the virtualenv).
stdlib=$(python -c "import sysconfig; print(sysconfig.get_path('stdlib'))")
find "$stdlib" -depth -type d -name __pycache__ -exec rm -rf {} +

# 4. Every ELF file left finds the libraries it links.
missing=0
for path in $(find /usr -xdev -type f \( -perm -u+x -o -name '*.so*' \)); do
    [ "$(od -An -c -N4 "$path" | tr -d ' ')" = '177ELF' ] || continue
    if ldd "$path" 2> /dev/null | grep 'not found'; then
        echo "system.sh: $path needs a removed library" >&2
        missing=1
    fi
done
exit "$missing"

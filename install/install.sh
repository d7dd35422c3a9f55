#!/bin/sh
# Installs or upgrades dncs on a Linux/Apache Cybozu Office server.
#
#   sh install.sh /var/www/cgi-bin/cbag        (the folder that holds ag.cgi)
#
# It overwrites the programs and html/, and never touches dncs.ini or data/: an upgrade from an
# earlier dncs keeps every user's settings and links. Run it from the unpacked release folder
# (bin/dncs, bin/dncs-sync, html/, ini/dncs.ini).
set -eu

cybozu_dir=${1:?usage: sh install.sh CYBOZU_CGI_FOLDER}
here=$(cd "$(dirname "$0")/.." && pwd)
target="$cybozu_dir/dncs"
web_user=${WEB_USER:-www-data}

[ -f "$cybozu_dir/ag.cgi" ] || echo "warning: $cybozu_dir/ag.cgi not found; is this the Cybozu Office CGI folder?" >&2

mkdir -p "$target/bin" "$target/html" "$target/data"
# Replace the programs atomically: a request running the old CGI finishes undisturbed.
cp "$here/bin/dncs" "$target/bin/dncs.cgi.new" && mv -f "$target/bin/dncs.cgi.new" "$target/bin/dncs.cgi"
cp "$here/bin/dncs-sync" "$target/bin/dncs-sync.new" && mv -f "$target/bin/dncs-sync.new" "$target/bin/dncs-sync"
chmod 755 "$target/bin/dncs.cgi" "$target/bin/dncs-sync"
rm -rf "$target/html.new" && cp -R "$here/html" "$target/html.new" && rm -rf "$target/html" && mv "$target/html.new" "$target/html"

if [ ! -f "$target/bin/dncs.ini" ]; then
  cp "$here/ini/dncs.ini" "$target/bin/dncs.ini"
  echo "A new dncs.ini was written to $target/bin/dncs.ini: set CYBOZU_URL and the Google client in it."
fi

# The CGI (run as the web server's user) and dncs-sync (run by cron as the same user) share data/.
chown -R "$web_user" "$target/data" 2>/dev/null || echo "warning: could not give $target/data to $web_user" >&2
chmod 700 "$target/data"

cat <<MSG
dncs is installed in $target.
  1. Set the administrator password:  sudo -u $web_user $target/bin/dncs-sync admin-password
  2. Check the installation:          sudo -u $web_user $target/bin/dncs-sync check
  3. Schedule the sync (see install/cron.txt), e.g. in /etc/cron.d/dncs:
       * * * * * $web_user $target/bin/dncs-sync run >/dev/null 2>&1
MSG

#!/bin/sh
# Exit 0 when the given host:port accepts a TCP connection.
target="${1:-127.0.0.1:80}"
nc -z -w 3 "${target%:*}" "${target#*:}" && echo "ok $target"

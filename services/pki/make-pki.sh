#!/bin/sh
# A throw-away certificate authority and certificates for the lab's TLS (docs/tls.md), made
# with the openssl command line at run time; no private key is ever committed.
#
#   make-pki.sh DIR NAME=SAN[,SAN...] [NAME=SAN...]
#       DIR/ca.pem (the lab's CA: trust this), DIR/NAME.pem + DIR/NAME.key per certificate,
#       each valid for 30 days and for its SANs (DNS:name, IP:address)
#   make-pki.sh DIR --failures NAME=SAN[,SAN...]
#       also what the TLS failure table needs, for NAME's SANs:
#       DIR/expired.pem/.key (right names, valid only in 2020) and DIR/stranger.pem/.key
#       (right names, signed by another CA, DIR/other-ca.pem, that nobody trusts)
#
# Idempotent: an existing DIR/ca.pem is kept (and the certificates it signed), so restarting
# the lab does not change what clients trust, until the CA has less than a day left: then all
# is made anew. Keys: EC P-256, readable by their owner only.
set -eu
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
dir=$1
shift
failures=no
if [ "$1" = --failures ]; then
    failures=yes
    shift
fi
mkdir -p "$dir"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

new_ca() {  # new_ca NAME: DIR/NAME.pem, DIR/NAME.key
    [ -e "$dir/$1.pem" ] && return 0
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=socketlab $1" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/$1.key" -out "$dir/$1.pem" 2>/dev/null
}

issue() {  # issue CA NAME SANS [STARTDATE ENDDATE]: DIR/NAME.pem, DIR/NAME.key signed by CA
    ca=$1 name=$2 sans=$3
    [ -e "$dir/$name.pem" ] && return 0
    : >"$work/index.txt"
    printf '01\n' >"$work/serial"
    cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = lab
[lab]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $sans
EOF
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
        -keyout "$dir/$name.key" -out "$work/$name.csr" 2>/dev/null
    if [ $# -ge 5 ]; then
        dates="-startdate $4 -enddate $5"
    else
        dates="-days 30"
    fi
    # shellcheck disable=SC2086  # $dates is two options
    openssl ca -batch -notext -config "$work/ca.cnf" -extensions leaf -cert "$dir/$ca.pem" \
        -keyfile "$dir/$ca.key" -in "$work/$name.csr" -out "$dir/$name.pem" $dates 2>/dev/null
}

# A CA within a day of its end (a lab volume kept for a month) is replaced, and with it every
# certificate it signed.
if [ -e "$dir/ca.pem" ] && ! openssl x509 -checkend 86400 -noout -in "$dir/ca.pem" >/dev/null; then
    rm -f "$dir"/*.pem "$dir"/*.key
fi
new_ca ca
for spec in "$@"; do
    name=${spec%%=*}
    sans=${spec#*=}
    issue ca "$name" "$sans"
    if [ "$failures" = yes ]; then
        issue ca expired "$sans" 20200101000000Z 20200102000000Z
        new_ca other-ca
        issue other-ca stranger "$sans"
    fi
done
chmod 0644 "$dir"/*.pem
ls "$dir"

#!/bin/sh
# Creates the PKI a multi-host Tether deployment needs, into one folder (default: ./certs):
#   ca.crt ca.key            the CA Tether issues device certificates from (TETHER_CERTS_DIR)
#   server.crt server.key    Tether's API (SANs: tether, localhost, and $TETHER_DNS_NAMES)
#   admin.crt admin.key      the CLI's client certificate (CN admin, OU users)
#   mosquitto.crt/.key       Mosquitto's listener (SAN mosquitto)
#   rabbitmq.crt/.key        RabbitMQ's TLS listeners (SAN rabbitmq)
#   postgres.crt/.key        PostgreSQL's TLS (SAN postgres)
#   crl.pem                  an empty CRL signed by the CA; Tether's certificate service rewrites it
# Existing files are kept, so running it again only adds what is missing. Needs openssl >= 1.1.1.
# Usage: deploy/pki/make-certs.sh [dir]      (TETHER_DNS_NAMES="tether.example.com api.local")
set -eu
dir="${1:-certs}"
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -f ca.key ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=Tether CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out ca.crt
fi

# issue NAME SUBJECT USAGE SANS
issue() {
  name="$1"; subject="$2"; usage="$3"; sans="$4"
  [ -f "$name.crt" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$usage
authorityKeyIdentifier=keyid"
  [ -n "$sans" ] && ext="$ext
subjectAltName=$sans"
  printf '%s\n' "$ext" > "$name.ext"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 825 \
    -extfile "$name.ext" -out "$name.crt"
  rm -f "$name.csr" "$name.ext"
}

extra=""
for n in ${TETHER_DNS_NAMES:-}; do extra="$extra,DNS:$n"; done
issue server "/CN=tether" serverAuth "DNS:tether,DNS:localhost,IP:127.0.0.1$extra"
issue admin "/CN=admin/OU=users" clientAuth ""
issue mosquitto "/CN=mosquitto" serverAuth "DNS:mosquitto,DNS:localhost,IP:127.0.0.1"
issue rabbitmq "/CN=rabbitmq" serverAuth "DNS:rabbitmq,DNS:localhost,IP:127.0.0.1"
issue postgres "/CN=postgres" serverAuth "DNS:postgres,DNS:localhost,IP:127.0.0.1"

if [ ! -f crl.pem ]; then
  mkdir -p .ca && : > .ca/index.txt
  cat > .ca/ca.cnf <<CNF
[ca]
default_ca = tether
[tether]
database = .ca/index.txt
crlnumber = .ca/crlnumber
default_md = sha256
default_crl_days = 30
CNF
  [ -f .ca/crlnumber ] || echo 01 > .ca/crlnumber
  openssl ca -batch -config .ca/ca.cnf -gencrl -keyfile ca.key -cert ca.crt -out crl.pem 2>/dev/null
fi
chmod 0644 ./*.crt crl.pem
chmod 0600 ./*.key
echo "PKI in $(pwd): $(ls ./*.crt | tr '\n' ' ')"

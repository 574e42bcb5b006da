# shellcheck shell=bash
# The secured single-node broker of `scripts/kafka up --secure` (sourced by scripts/kafka; see
# docs/security.md). Listeners, all TLS, certificates from a local CA made here with openssl:
#   SASL_SSL   127.0.0.1:$PORT            SCRAM-SHA-512
#   MTLS (SSL) 127.0.0.1:$PORT+1          client certificate required
#   CONTROLLER 127.0.0.1:$CONTROLLER_PORT SSL, client certificate required (the broker's own)
# The broker talks to itself over MTLS with its certificate (User:broker). StandardAuthorizer,
# no ACL = denied; super users User:admin (SCRAM user and admin certificate) and User:broker.
# Everything lives in $RUN_DIR: pki/ (CA, certificates, keys), secrets (the SCRAM passwords),
# *.properties (admin client configs for the Kafka tools), secure-*.env (client settings).

SECURE_PRINCIPAL=order-service

secure_files() { # the PEM files, passwords and client configs; made once per run dir
  local pki=$RUN_DIR/pki name
  [[ -f $RUN_DIR/secrets ]] && return
  mkdir -p "$pki"; chmod 700 "$RUN_DIR" "$pki"
  (
    cd "$pki"
    umask 077
    ca() { # name subject
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 30 -subj "$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    }
    ca ca "/CN=order-service local CA"
    ca untrusted-ca "/CN=some other CA" # for checks: a CA the broker's certificate is not from
    for name in broker admin "$SECURE_PRINCIPAL"; do
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key.tmp" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
      openssl pkcs8 -topk8 -nocrypt -in "$name.key.tmp" -out "$name.key"; rm -f "$name.key.tmp"
      printf '%s\n' basicConstraints=CA:FALSE extendedKeyUsage=serverAuth,clientAuth \
        "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
      cat "$name.key" "$name.pem" >"$name.keystore.pem" # Kafka's PEM keystore: key, then chain
      rm -f "$name.csr" "$name.ext"
    done
    rm -f ca.srl
  ) || die "generating the certificates in $pki failed"
  (
    umask 077
    printf 'ADMIN_PASSWORD=%s\nSERVICE_PASSWORD=%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" \
      >"$RUN_DIR/secrets"
  )
}

secure_secret() { sed -n "s/^$1=//p" "$RUN_DIR/secrets"; }

secure_config() { # id n dir: the broker's listeners and security, then the shared settings
  local pki=$RUN_DIR/pki
  ((${2} == 1)) || die "--secure runs a single node (--brokers 1)"
  cat <<CONF
node.id=$1
controller.quorum.voters=$1@127.0.0.1:$CONTROLLER_PORT
listeners=SASL_SSL://127.0.0.1:$PORT,MTLS://127.0.0.1:$((PORT + 1)),CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$PORT,MTLS://127.0.0.1:$((PORT + 1))
inter.broker.listener.name=MTLS
listener.security.protocol.map=SASL_SSL:SASL_SSL,MTLS:SSL,CONTROLLER:SSL
log.dirs=$3/data
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.mtls.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$pki/broker.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$pki/ca.pem
ssl.endpoint.identification.algorithm=https
# A certificate's subject CN=name is the principal User:name.
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,RULE:^CN=([^,]+),.*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker
CONF
  "$ROOT/docker/kafka/bin/kafka-docker" props "$SHARED"
  echo "controlled.shutdown.enable=true"
}

secure_format_args() { # the SCRAM credentials, created with the storage
  printf '%s\n' --add-scram "SCRAM-SHA-512=[name=admin,password=$(secure_secret ADMIN_PASSWORD)]" \
    --add-scram "SCRAM-SHA-512=[name=$SECURE_PRINCIPAL,password=$(secure_secret SERVICE_PASSWORD)]"
}

secure_clients() { # admin configs for the Kafka tools, and the env files of every client
  local pki=$RUN_DIR/pki admin_pw service_pw
  admin_pw=$(secure_secret ADMIN_PASSWORD); service_pw=$(secure_secret SERVICE_PASSWORD)
  umask 077
  cat >"$RUN_DIR/admin-scram.properties" <<CONF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
ssl.truststore.type=PEM
ssl.truststore.location=$pki/ca.pem
CONF
  cat >"$RUN_DIR/admin-mtls.properties" <<CONF
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$pki/ca.pem
ssl.keystore.type=PEM
ssl.keystore.location=$pki/admin.keystore.pem
CONF
  local v=ORDER_SERVICE_KAFKA__
  scram_env() { # user password
    printf '%s\n' "${v}BOOTSTRAP_SERVERS=127.0.0.1:$PORT" "${v}SECURITY_PROTOCOL=SASL_SSL" \
      "${v}SASL_MECHANISM=SCRAM-SHA-512" "${v}SASL_USERNAME=$1" "${v}SASL_PASSWORD=$2" "${v}SSL_CAFILE=$pki/ca.pem"
  }
  mtls_env() { # name
    printf '%s\n' "${v}BOOTSTRAP_SERVERS=127.0.0.1:$((PORT + 1))" "${v}SECURITY_PROTOCOL=SSL" \
      "${v}SSL_CAFILE=$pki/ca.pem" "${v}SSL_CERTFILE=$pki/$1.pem" "${v}SSL_KEYFILE=$pki/$1.key"
  }
  scram_env "$SECURE_PRINCIPAL" "$service_pw" >"$RUN_DIR/secure-scram.env"
  mtls_env "$SECURE_PRINCIPAL" >"$RUN_DIR/secure-mtls.env"
  scram_env admin "$admin_pw" >"$RUN_DIR/secure-admin.env"
  mtls_env admin >"$RUN_DIR/secure-admin-mtls.env"
  umask 022
}

secure_acls() { # add|remove [--prefixed] [--input T] [--output T] [--dead-letter T] [--retry T] [--group G]
  local action=$1 pattern=literal input="" output="" dlq="" retry="" group="" pids=() p rc=0 extra=()
  shift
  [[ $action == remove ]] && extra=(--force)
  while [[ $# -gt 0 ]]; do
    case $1 in
      --prefixed) pattern=prefixed; shift ;;
      --input | --output | --dead-letter | --retry | --group)
        [[ $# -ge 2 && -n $2 ]] || die "$1 needs a name"
        case $1 in
          --input) input=$2 ;; --output) output=$2 ;; --dead-letter) dlq=$2 ;; --retry) retry=$2 ;; --group) group=$2 ;;
        esac
        shift 2 ;;
      *) die "unknown option $1 (see docs/security.md)" ;;
    esac
  done
  [[ -f $RUN_DIR/admin-scram.properties ]] || die "no secure broker in $RUN_DIR; run scripts/kafka up --secure"
  acl() { # pattern resource-options... -- operations...
    local pat=$1 args=(); shift
    while [[ $1 != -- ]]; do args+=("$1"); shift; done; shift
    for p in "$@"; do args+=(--operation "$p"); done
    timeout 120 "$TOOL" acls --bootstrap-server "127.0.0.1:$PORT" --command-config "$RUN_DIR/admin-scram.properties" \
      "--$action" "${extra[@]}" --allow-principal "User:$SECURE_PRINCIPAL" \
      --resource-pattern-type "$pat" "${args[@]}" >/dev/null 9>&- &
    pids+=($!)
  }
  [[ -z $input ]] || acl "$pattern" --topic "$input" -- Read DescribeConfigs
  [[ -z $retry ]] || acl "$pattern" --topic "$retry" -- Read Write DescribeConfigs
  [[ -z $dlq ]] || acl "$pattern" --topic "$dlq" -- Write DescribeConfigs
  [[ -z $output ]] || acl "$pattern" --topic "$output" -- Write
  [[ -z $group ]] || acl prefixed --group "$group" -- Read
  [[ -z $group ]] || acl prefixed --transactional-id "$group-" -- Write Describe
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  ((rc == 0)) || die "kafka-acls --$action failed"
}

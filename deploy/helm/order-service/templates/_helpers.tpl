{{/* Names and labels. */}}
{{- define "order-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "order-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "order-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "order-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "order-service.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "order-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The shutdown watchdog's margin: on SIGTERM the service finishes within
ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S, and past it exits at most this much later
(_FORCE_EXIT_SLACK_S in src/order_service/adapters/supervision.py; deploy/helm/check.py fails
when the two differ).
*/}}
{{- define "order-service.watchdogMarginS" -}}2.5{{- end }}

{{/*
terminationGracePeriodSeconds, from the one value shutdown.gracePeriodS (which also sets
ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S): the grace period plus the watchdog margin, rounded up, plus
shutdown.killSlackS for the kubelet's own delay. The kubelet's SIGKILL then never cuts a shutdown
the service itself would have ended.
*/}}
{{- define "order-service.terminationGracePeriodSeconds" -}}
{{- $bound := addf .Values.shutdown.gracePeriodS (include "order-service.watchdogMarginS" .) | ceil | int }}
{{- add $bound .Values.shutdown.killSlackS }}
{{- end }}

{{/*
The startup probe's budget in probe periods: the service opens its HTTP port only after the Kafka
connect phase (kafka.connectTimeoutS, which also sets ORDER_SERVICE_KAFKA__CONNECT_TIMEOUT_S) and,
with effects on, the database connect (effects.connectTimeoutS); startupProbe.slackS covers the rest
(imports, provisioning, the producer's start). A service that cannot connect exits 1 by itself
within those bounds, so the probe never kills a start that would have succeeded.
*/}}
{{- define "order-service.startupFailureThreshold" -}}
{{- $budget := addf .Values.kafka.connectTimeoutS .Values.startupProbe.slackS }}
{{- if .Values.effects.databaseUrlSecret.name }}
{{- $budget = addf $budget .Values.effects.connectTimeoutS }}
{{- end }}
{{- divf $budget .Values.startupProbe.periodSeconds | ceil | int }}
{{- end }}

{{/* KEDA's name for the service's SASL mechanism. */}}
{{- define "order-service.kedaSasl" -}}
{{- $m := .Values.kafka.sasl.mechanism }}
{{- if eq $m "PLAIN" }}plaintext
{{- else if eq $m "SCRAM-SHA-256" }}scram_sha256
{{- else if eq $m "SCRAM-SHA-512" }}scram_sha512
{{- else }}{{ fail (printf "kafka.sasl.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" $m) }}
{{- end }}
{{- end }}

{{- define "order-service.sasl" -}}
{{- hasPrefix "SASL_" .Values.kafka.securityProtocol }}
{{- end }}

{{- define "order-service.tls" -}}
{{- has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}
{{- end }}

{{/* Where the TLS Secret's files are mounted (docs/security.md, "In a container"). */}}
{{- define "order-service.tlsDir" -}}/etc/kafka-client{{- end }}

{{/* Checks of values that would otherwise render a service that cannot work. */}}
{{- define "order-service.validate" -}}
{{- $partitions := int .Values.topics.partitions }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicaCount) $partitions) }}
{{- fail (printf "autoscaling.maxReplicaCount (%d) is above topics.partitions (%d): an instance past the partitions gets none and idles; raise the partitions first" (int .Values.autoscaling.maxReplicaCount) $partitions) }}
{{- end }}
{{- if and (not .Values.autoscaling.enabled) (gt (int .Values.replicaCount) $partitions) }}
{{- fail (printf "replicaCount (%d) is above topics.partitions (%d): an instance past the partitions gets none and idles" (int .Values.replicaCount) $partitions) }}
{{- end }}
{{- if not (has .Values.kafka.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) }}
{{- fail (printf "kafka.securityProtocol: %q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if eq (include "order-service.sasl" .) "true" }}
{{- if not (and .Values.kafka.sasl.mechanism .Values.kafka.sasl.username .Values.kafka.sasl.passwordSecret.name) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.passwordSecret.name (a Secret holding the password)" .Values.kafka.securityProtocol) }}
{{- end }}
{{- end }}
{{- if and .Values.kafka.tls.keyKey (not .Values.kafka.tls.certKey) }}
{{- fail "kafka.tls.keyKey is set: set kafka.tls.certKey too (mutual TLS needs the certificate)" }}
{{- end }}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.secretName) }}
{{- fail "kafka.tls.certKey is set: set kafka.tls.secretName, the Secret that holds the certificate and key" }}
{{- end }}
{{- end }}

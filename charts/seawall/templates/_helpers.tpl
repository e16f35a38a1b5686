{{/*
Names and labels. Kubernetes names are at most 63 characters; CronJob names
at most 52 (the controller appends an 11-character suffix to Job names).
*/}}
{{- define "seawall.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seawall.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "seawall.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seawall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seawall.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "seawall.labels" -}}
helm.sh/chart: {{ include "seawall.chart" . }}
{{ include "seawall.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seawall
{{- end }}

{{- define "seawall.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "seawall.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "seawall.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"true" when the pods mount the backup volume (a local repository, or
backupVolume.enabled: true beside object storage), else empty.
*/}}
{{- define "seawall.localVolume" -}}
{{- if kindIs "invalid" .Values.backupVolume.enabled }}
{{- if not .Values.repository.url }}true{{ end }}
{{- else if .Values.backupVolume.enabled }}true{{ end }}
{{- end }}

{{/* Where mounted files that are not secret (the S3 CA bundle) go. */}}
{{- define "seawall.s3CaDir" -}}/etc/seawall/s3-ca{{- end }}
{{- define "seawall.webIdentityDir" -}}/var/run/secrets/seawall/web-identity{{- end }}

{{/*
The Secret with the S3 keys a pod mounts: the exporter's read-only one when
given. Argument: dict root, exporter (bool).
*/}}
{{- define "seawall.s3Secret" -}}
{{- $c := .root.Values.repository.s3.credentials }}
{{- if .exporter }}{{ default $c.existingSecret $c.exporterSecret }}{{ else }}{{ $c.existingSecret }}{{ end }}
{{- end }}

{{- define "seawall.claimName" -}}
{{- default (printf "%s-backups" (include "seawall.fullname" .)) .Values.backupVolume.existingClaim }}
{{- end }}

{{/*
A CronJob name for one series: "<fullname>-<prefix>-<series>", made a valid
DNS label and kept unique after truncation by a short hash of the series.
*/}}
{{- define "seawall.seriesJobName" -}}
{{- $root := index . 0 }}{{- $prefix := index . 1 }}{{- $series := index . 2 }}
{{- $clean := regexReplaceAll "[^a-z0-9-]+" (lower $series) "-" | trimAll "-" | trunc 20 | trimSuffix "-" }}
{{- printf "%s-%s-%s-%s" (include "seawall.fullname" $root) $prefix (default "x" $clean) (sha256sum $series | trunc 5) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/* Secret files are mounted here, one directory per Secret. */}}
{{- define "seawall.secretsDir" -}}/run/secrets/seawall{{- end }}

{{/*
Fail early on combinations that would only fail at 04:00 on a Sunday.
*/}}
{{- define "seawall.validate" -}}
{{- $local := include "seawall.localVolume" . }}
{{- if and (not .Values.repository.url) (not $local) }}
{{- fail "backupVolume.enabled=false needs repository.url (s3://bucket/prefix): a local repository lives on the backup volume" }}
{{- end }}
{{- if and .Values.repository.s3.caBundle.configMap .Values.repository.s3.caBundle.secret }}
{{- fail "repository.s3.caBundle: set configMap or secret, not both" }}
{{- end }}
{{- range .Values.repository.mirrors }}
{{- if and (hasPrefix "/" .) (not (and $local (hasPrefix (printf "%s/" $.Values.backupVolume.mountPath) .))) }}
{{- fail (printf "repository.mirrors: %s is a path, but pods mount only backupVolume.mountPath (%s); use an s3:// URL or a path below the mounted volume" . $.Values.backupVolume.mountPath) }}
{{- end }}
{{- end }}
{{- if and .Values.encryption.enabled (not .Values.encryption.recipients) (not .Values.encryption.keySecret.name) }}
{{- fail "encryption.enabled needs encryption.recipients (age public keys from `seawall keygen`) or encryption.keySecret.name" }}
{{- end }}
{{- if and .Values.encryption.enabled .Values.verify.enabled (not .Values.encryption.identitySecret.name) (not .Values.encryption.keySecret.name) }}
{{- fail "verifying encrypted backups needs the age identity: set encryption.identitySecret.name (a Secret with the AGE-SECRET-KEY), or set verify.enabled=false and verify where the identity lives" }}
{{- end }}
{{- end }}

{{/*
Pod-level settings shared by every seawall pod. Argument: the root context.
*/}}
{{- define "seawall.podCommon" -}}
serviceAccountName: {{ include "seawall.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Environment of a seawall container: the ConfigMap, the *_FILE variables of
the Secrets this pod mounts, then extraEnv. Argument: dict root, secrets
(bool: does this pod mount the Secrets), engine (whose credentials),
identity (bool: is the age identity mounted in this pod).
*/}}
{{- define "seawall.env" -}}
{{- $root := .root }}
{{- $dir := include "seawall.secretsDir" $root -}}
envFrom:
  - configMapRef:
      name: {{ include "seawall.fullname" $root }}
env:
  - name: HOME
    value: /tmp
{{- if .secrets }}
{{- if and (eq .engine "postgres") $root.Values.postgres.passwordSecret.name }}
  - name: DB_PASSWORD_FILE
    value: {{ printf "%s/db-password/password" $dir }}
{{- end }}
{{- if and (eq .engine "qdrant") $root.Values.qdrant.apiKeySecret.name }}
  - name: QDRANT_API_KEY_FILE
    value: {{ printf "%s/qdrant-api-key/api-key" $dir }}
{{- end }}
{{- if $root.Values.encryption.keySecret.name }}
  - name: ENCRYPTION_KEY_FILE
    value: {{ printf "%s/encryption-key/key" $dir }}
{{- end }}
{{- if and .identity $root.Values.encryption.identitySecret.name }}
  - name: ENCRYPTION_IDENTITY_FILES
    value: {{ printf "%s/encryption-identity/identity" $dir }}
{{- end }}
{{- end }}
{{- $s3secret := include "seawall.s3Secret" (dict "root" $root "exporter" .exporter) }}
{{- if $s3secret }}
  - name: AWS_ACCESS_KEY_ID_FILE
    value: {{ printf "%s/s3/access-key-id" $dir }}
  - name: AWS_SECRET_ACCESS_KEY_FILE
    value: {{ printf "%s/s3/secret-access-key" $dir }}
{{- if $root.Values.repository.s3.credentials.sessionTokenKey }}
  - name: AWS_SESSION_TOKEN_FILE
    value: {{ printf "%s/s3/session-token" $dir }}
{{- end }}
{{- end }}
{{- with $root.Values.repository.s3.webIdentity }}
{{- if .roleArn }}
  - name: AWS_ROLE_ARN
    value: {{ .roleArn | quote }}
  - name: AWS_WEB_IDENTITY_TOKEN_FILE
    value: {{ printf "%s/token" (include "seawall.webIdentityDir" $root) }}
{{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Volumes for object storage (the S3 keys, the CA bundle, a web identity
token); mounts below. Argument: dict root, exporter (bool).
*/}}
{{- define "seawall.s3Volumes" -}}
{{- $root := .root }}
{{- $s3 := $root.Values.repository.s3 }}
{{- $secret := include "seawall.s3Secret" . }}
{{- if $secret }}
- name: s3-credentials
  secret:
    secretName: {{ $secret }}
    defaultMode: 0440
    items:
      - key: {{ $s3.credentials.accessKeyIdKey }}
        path: access-key-id
      - key: {{ $s3.credentials.secretAccessKeyKey }}
        path: secret-access-key
      {{- with $s3.credentials.sessionTokenKey }}
      - key: {{ . }}
        path: session-token
      {{- end }}
{{- end }}
{{- with $s3.caBundle }}
{{- if .configMap }}
- name: s3-ca
  configMap:
    name: {{ .configMap }}
    items:
      - key: {{ .key }}
        path: ca.crt
{{- else if .secret }}
- name: s3-ca
  secret:
    secretName: {{ .secret }}
    defaultMode: 0444
    items:
      - key: {{ .key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- with $s3.webIdentity }}
{{- if .roleArn }}
- name: web-identity
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          audience: {{ .audience }}
          expirationSeconds: {{ .expirationSeconds }}
          path: token
{{- end }}
{{- end }}
{{- end }}

{{- define "seawall.s3Mounts" -}}
{{- $root := .root }}
{{- $s3 := $root.Values.repository.s3 }}
{{- if include "seawall.s3Secret" . }}
- name: s3-credentials
  mountPath: {{ include "seawall.secretsDir" $root }}/s3
  readOnly: true
{{- end }}
{{- if or $s3.caBundle.configMap $s3.caBundle.secret }}
- name: s3-ca
  mountPath: {{ include "seawall.s3CaDir" $root }}
  readOnly: true
{{- end }}
{{- if $s3.webIdentity.roleArn }}
- name: web-identity
  mountPath: {{ include "seawall.webIdentityDir" $root }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes of a job pod. Argument: dict root, engine, identity (bool).
Secrets are mounted with mode 0440 (group = fsGroup) so the non-root user
can read them and nobody else can.
*/}}
{{- define "seawall.jobVolumes" -}}
{{- $root := .root -}}
{{- if include "seawall.localVolume" $root }}
- name: backups
  persistentVolumeClaim:
    claimName: {{ include "seawall.claimName" $root }}
{{- end }}
{{- with include "seawall.s3Volumes" (dict "root" $root "exporter" false) | trim }}
{{ . }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpVolume.sizeLimit }}
{{- if eq .engine "postgres" }}
{{- with $root.Values.postgres.passwordSecret }}
{{- if .name }}
- name: db-password
  secret:
    secretName: {{ .name }}
    defaultMode: 0440
    items:
      - key: {{ .key }}
        path: password
{{- end }}
{{- end }}
{{- end }}
{{- if eq .engine "qdrant" }}
{{- with $root.Values.qdrant.apiKeySecret }}
{{- if .name }}
- name: qdrant-api-key
  secret:
    secretName: {{ .name }}
    defaultMode: 0440
    items:
      - key: {{ .key }}
        path: api-key
{{- end }}
{{- end }}
{{- end }}
{{- with $root.Values.encryption.keySecret }}
{{- if .name }}
- name: encryption-key
  secret:
    secretName: {{ .name }}
    defaultMode: 0440
    items:
      - key: {{ .key }}
        path: key
{{- end }}
{{- end }}
{{- if and .identity $root.Values.encryption.identitySecret.name }}
- name: encryption-identity
  secret:
    secretName: {{ $root.Values.encryption.identitySecret.name }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.encryption.identitySecret.key }}
        path: identity
{{- end }}
{{- end }}

{{- define "seawall.jobVolumeMounts" -}}
{{- $root := .root }}
{{- $dir := include "seawall.secretsDir" $root -}}
{{- if include "seawall.localVolume" $root }}
- name: backups
  mountPath: {{ $root.Values.backupVolume.mountPath }}
{{- end }}
{{- with include "seawall.s3Mounts" (dict "root" $root "exporter" false) | trim }}
{{ . }}
{{- end }}
- name: tmp
  mountPath: /tmp
{{- if and (eq .engine "postgres") $root.Values.postgres.passwordSecret.name }}
- name: db-password
  mountPath: {{ $dir }}/db-password
  readOnly: true
{{- end }}
{{- if and (eq .engine "qdrant") $root.Values.qdrant.apiKeySecret.name }}
- name: qdrant-api-key
  mountPath: {{ $dir }}/qdrant-api-key
  readOnly: true
{{- end }}
{{- if $root.Values.encryption.keySecret.name }}
- name: encryption-key
  mountPath: {{ $dir }}/encryption-key
  readOnly: true
{{- end }}
{{- if and .identity $root.Values.encryption.identitySecret.name }}
- name: encryption-identity
  mountPath: {{ $dir }}/encryption-identity
  readOnly: true
{{- end }}
{{- end }}

{{/*
One CronJob. Argument: dict root, name, component, engine ("postgres" or
"qdrant": a job gets only its own engine's credentials), schedule, args
(list), identity (bool), deadline (activeDeadlineSeconds).
*/}}
{{- define "seawall.cronJob" -}}
{{- $root := .root -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "seawall.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  schedule: {{ .schedule | quote }}
  {{- with $root.Values.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ $root.Values.cronJob.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ $root.Values.cronJob.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $root.Values.cronJob.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "seawall.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
    spec:
      backoffLimit: {{ $root.Values.cronJob.backoffLimit }}
      activeDeadlineSeconds: {{ .deadline }}
      {{- if not (kindIs "invalid" $root.Values.cronJob.ttlSecondsAfterFinished) }}
      ttlSecondsAfterFinished: {{ $root.Values.cronJob.ttlSecondsAfterFinished }}
      {{- end }}
      template:
        metadata:
          labels:
            {{- include "seawall.selectorLabels" $root | nindent 12 }}
            app.kubernetes.io/component: {{ .component }}
            {{- with $root.Values.podLabels }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          annotations:
            checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
            {{- with $root.Values.podAnnotations }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
        spec:
          restartPolicy: Never
          {{- include "seawall.podCommon" $root | nindent 10 }}
          containers:
            - name: seawall
              image: {{ include "seawall.image" $root }}
              imagePullPolicy: {{ $root.Values.image.pullPolicy }}
              command: ["seawall"]
              args:
                {{- toYaml .args | nindent 16 }}
              {{- include "seawall.env" (dict "root" $root "secrets" true "engine" .engine "identity" .identity) | nindent 14 }}
              securityContext:
                {{- toYaml $root.Values.securityContext | nindent 16 }}
              resources:
                {{- toYaml $root.Values.resources | nindent 16 }}
              volumeMounts:
                {{- include "seawall.jobVolumeMounts" (dict "root" $root "engine" .engine "identity" .identity) | trim | nindent 16 }}
          volumes:
            {{- include "seawall.jobVolumes" (dict "root" $root "engine" .engine "identity" .identity) | trim | nindent 12 }}
{{- end }}

{{- define "seawall.engines" -}}
{{- $e := list }}
{{- if .Values.postgres.enabled }}{{ $e = append $e "postgres" }}{{ end }}
{{- if .Values.qdrant.enabled }}{{ $e = append $e "qdrant" }}{{ end }}
{{- join "," $e }}
{{- end }}

{{/* Chart name, 63 chars max (a DNS-1123 label). */}}
{{- define "registry-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already contains the chart name. */}}
{{- define "registry-bridge.fullname" -}}
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

{{- define "registry-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "registry-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "registry-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "registry-bridge.labels" -}}
helm.sh/chart: {{ include "registry-bridge.chart" . }}
{{ include "registry-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "registry-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "registry-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "registry-bridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The config file as the bridge reads it: .Values.config with the in-cluster defaults filled in
(sink kube, leader lease in the release namespace, server port 8080). Returns YAML.
*/}}
{{- define "registry-bridge.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if not (hasKey $cfg "sink") }}
{{- $_ := set $cfg "sink" (dict "kind" "kube") }}
{{- end }}
{{- $le := deepCopy (get $cfg "leaderElection" | default dict) }}
{{- if not (hasKey $le "namespace") }}
{{- $_ := set $le "namespace" .Release.Namespace }}
{{- end }}
{{- $_ := set $cfg "leaderElection" $le }}
{{- $server := deepCopy (get $cfg "server" | default dict) }}
{{- if not (hasKey $server "port") }}
{{- $_ := set $server "port" 8080 }}
{{- end }}
{{- $_ := set $cfg "server" $server }}
{{- toYaml $cfg }}
{{- end }}

{{/* The effective config as a dict. */}}
{{- define "registry-bridge.configDict" -}}
{{- include "registry-bridge.config" . | fromYaml | toJson }}
{{- end }}

{{/* Namespaces the bridge writes ServiceEntries to: every source's targetNamespace + rbac.targetNamespaces. JSON list. */}}
{{- define "registry-bridge.targetNamespaces" -}}
{{- $out := list }}
{{- range $src := (.Values.config.sources | default list) }}
{{- $out = append $out (default "default" $src.targetNamespace) }}
{{- end }}
{{- range .Values.rbac.targetNamespaces }}
{{- $out = append $out . }}
{{- end }}
{{- $out | uniq | sortAlpha | toJson }}
{{- end }}

{{/* Fails rendering on values that would be unsafe (the schema says the same). */}}
{{- define "registry-bridge.validate" -}}
{{- $cfg := include "registry-bridge.configDict" . | fromJson }}
{{- $le := get $cfg "leaderElection" | default dict }}
{{- if and (gt (int .Values.replicaCount) 1) (not $le.enabled) }}
{{- fail (printf "replicaCount=%d needs config.leaderElection.enabled=true: without a leader lease every replica would write ServiceEntries" (int .Values.replicaCount)) }}
{{- end }}
{{- $sink := get $cfg "sink" | default dict }}
{{- if and (eq (toString $sink.kind) "kube") $sink.kubeconfig }}
{{- fail "config.sink.kubeconfig must be empty in the chart: the bridge uses its ServiceAccount (in-cluster credentials)" }}
{{- end }}
{{- end }}

{{/* Volumes shared by the Deployment, the sidecar recipe and the Jobs. */}}
{{- define "registry-bridge.volumes" -}}
- name: config
  configMap:
    name: {{ include "registry-bridge.fullname" . }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- range .Values.secretMounts }}
- name: {{ .name }}
  secret:
    secretName: {{ .secretName }}
{{- end }}
{{- end }}

{{/* The registry-bridge container; $args is the command line after the entrypoint. */}}
{{- define "registry-bridge.container" -}}
{{- $root := index . 0 }}
{{- $args := index . 1 }}
{{- $probes := index . 2 }}
{{- $extraMounts := list }}
{{- if gt (len .) 3 }}{{ $extraMounts = index . 3 }}{{ end }}
{{- $cfg := include "registry-bridge.configDict" $root | fromJson -}}
- name: registry-bridge
  image: {{ include "registry-bridge.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args:
    {{- toYaml $args | nindent 4 }}
  {{- if or $root.Values.registryCredentials $root.Values.extraEnv }}
  env:
    {{- range $root.Values.registryCredentials }}
    - name: {{ .env }}
      valueFrom:
        secretKeyRef:
          name: {{ .secretName }}
          key: {{ .secretKey }}
          {{- if hasKey . "optional" }}
          optional: {{ .optional }}
          {{- end }}
    {{- end }}
    {{- with $root.Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- if $probes }}
  ports:
    - name: http
      containerPort: {{ $cfg.server.port }}
      protocol: TCP
  livenessProbe:
    {{- toYaml $root.Values.livenessProbe | nindent 4 }}
  readinessProbe:
    {{- toYaml $root.Values.readinessProbe | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $root.Values.resources | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/registry-bridge
      readOnly: true
    - name: tmp
      mountPath: /tmp
    {{- range $root.Values.secretMounts }}
    - name: {{ .name }}
      mountPath: {{ .mountPath }}
      readOnly: true
    {{- end }}
    {{- with $extraMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* Pod spec fields shared by the Deployment and the Jobs. */}}
{{- define "registry-bridge.podCommon" -}}
serviceAccountName: {{ include "registry-bridge.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
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

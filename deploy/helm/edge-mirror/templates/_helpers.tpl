{{- define "edge-mirror.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "edge-mirror.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "edge-mirror.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "edge-mirror.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "edge-mirror.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edge-mirror.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "edge-mirror.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "edge-mirror.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "edge-mirror.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The edge's TOML settings: the values' config, with the port and cache the chart decides. */}}
{{- define "edge-mirror.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $size := printf "%dMiB" (div (mul (int .Values.cache.sizeGiB) 1024 (int .Values.cache.usePercent)) 100) }}
{{- $_ := set $config "cache" (merge (dict "dir" "/var/cache/edge-mirror" "size" $size) (default (dict) $config.cache)) }}
{{- $_ := set $config "http" (merge (dict "addr" (printf "0.0.0.0:%d" (int .Values.port))) (omit (default (dict) $config.http) "addr")) }}
{{- toToml $config }}
{{- end }}

{{- define "edge-mirror.s3Secret" -}}
{{- .Values.s3Credentials.existingSecret | default (printf "%s-s3" (include "edge-mirror.fullname" .)) }}
{{- end }}

{{- define "edge-mirror.authSecret" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if or .Values.auth.htpasswd .Values.auth.tokenRootCertBundle }}
{{- printf "%s-auth" (include "edge-mirror.fullname" .) }}
{{- end }}
{{- end }}

{{/* Arguments of node-config.py shared by write and restore. */}}
{{- define "edge-mirror.nodeConfigArgs" -}}
{{- range .Values.nodeConfig.registries }}
- --registry
- {{ if .server }}{{ printf "%s=%s" .host .server | quote }}{{ else }}{{ .host | quote }}{{ end }}
{{- end }}
- --host-root
- /host
- --containerd-config
- {{ .Values.nodeConfig.containerdConfig | quote }}
{{- with .Values.nodeConfig.configPath }}
- --certs-dir
- {{ printf "/host%s" . | quote }}
{{- end }}
{{- end }}

{{- define "edge-mirror.nodeConfigVolumes" -}}
- name: host-containerd
  hostPath:
    path: {{ .Values.nodeConfig.hostDir }}
    type: DirectoryOrCreate
- name: node-config
  configMap:
    name: {{ include "edge-mirror.fullname" . }}
    items:
      - key: node-config.py
        path: node-config.py
{{- end }}

{{- define "edge-mirror.nodeConfigMounts" -}}
- name: host-containerd
  mountPath: {{ printf "/host%s" .Values.nodeConfig.hostDir }}
- name: node-config
  mountPath: /opt/node-config
  readOnly: true
{{- end }}

{{/* Root, to write the node's root-owned certs.d; nothing else. */}}
{{- define "edge-mirror.rootInitSecurityContext" -}}
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
{{- end }}
